package shard

// radixSort sorts keys by hi with a stable least-significant-digit radix
// sort (6 passes of 11 bits; a pass whose digit is the same in every key
// is skipped), using tmp (grown as needed) as scratch. Equal his keep their
// order. On the millions of random 64-bit prefixes a bulk load sorts it is
// several times faster than a comparison sort.
const (
	radixBits = 11
	radixMask = 1<<radixBits - 1
)

func radixSort(keys, tmp []loadKey) []loadKey {
	if len(keys) < 2 {
		return keys
	}
	if cap(tmp) < len(keys) {
		tmp = make([]loadKey, len(keys))
	}
	src, dst := keys, tmp[:len(keys)]
	for shift := uint(0); shift < 64; shift += radixBits {
		var count [1 << radixBits]int
		for _, k := range src {
			count[k.hi>>shift&radixMask]++
		}
		if count[src[0].hi>>shift&radixMask] == len(src) {
			continue // every key has this digit: nothing to move
		}
		pos := 0
		for i, c := range count {
			count[i] = pos
			pos += c
		}
		for _, k := range src {
			d := k.hi >> shift & radixMask
			dst[count[d]] = k
			count[d]++
		}
		src, dst = dst, src
	}
	if &src[0] != &keys[0] {
		copy(keys, src)
	}
	return keys
}
