package server

// Inline requests split into words as Redis splits them (sdssplitargs in
// Redis's sds.c), so that a line typed at a terminal means the same to
// both servers:
//
//   - words are separated by spaces, tabs, CR, LF, VT and FF;
//   - "double quotes" hold spaces and the escapes \n \r \t \b \a, \xHH
//     (two hex digits) and \<c> for any other c (so \" and \\);
//   - 'single quotes' hold spaces and the one escape \';
//   - a quote may open in the middle of a word (a"b c" is the word "ab c"),
//     but a closing quote must end the word: a"b"c is an error, as are
//     quotes left open at the end of the line.
//
// An error is a protocol error, as in Redis ("unbalanced quotes"): the
// connection answers it and closes.

// splitInline appends the words of line to argv and returns it. The words
// are unescaped in place, in line itself: a word's text is never longer
// than the bytes it was read from, so writing behind the read position
// never overwrites what is still to be read, nor a word already returned.
// maxArgs bounds the words; past it splitInline returns tooMany (and argv
// as it was).
func splitInline(line []byte, argv [][]byte, maxArgs int) (out [][]byte, tooMany bool, err error) {
	lo := len(argv)
	r, w := 0, 0 // read and write positions in line
	for {
		for r < len(line) && isInlineSpace(line[r]) {
			r++
		}
		if r == len(line) {
			return argv, false, nil
		}
		start := w
		for done := false; !done && r < len(line); {
			switch c := line[r]; {
			case isInlineSpace(c):
				done = true
			case c == '"' || c == '\'':
				if r, w, err = unquote(line, r+1, w, c); err != nil {
					return argv[:lo], false, err
				}
			default:
				line[w] = c
				r, w = r+1, w+1
			}
		}
		if len(argv)-lo == maxArgs {
			return argv[:lo], true, nil
		}
		argv = append(argv, line[start:w:w])
	}
}

// isInlineSpace reports whether c separates inline words (C's isspace).
func isInlineSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'
}

// errUnbalanced is the error for a quote left open or closed mid-word.
func errUnbalanced() error { return protocolError("unbalanced quotes in request") }

// closeQuote checks that the quote closed at line[r-1] ends its word.
func closeQuote(line []byte, r int) error {
	if r < len(line) && !isInlineSpace(line[r]) {
		return errUnbalanced()
	}
	return nil
}

// unquote copies the text quoted by q (a double or single quote) that
// starts at line[r] to line[w:], unescaping it, and returns the positions
// after the closing quote and after the copy. Single quotes know one
// escape, \'; double quotes know \xHH and \<c> (see unescape).
func unquote(line []byte, r, w int, q byte) (int, int, error) {
	for r < len(line) {
		c, n := line[r], 1
		switch {
		case c == q:
			return r + 1, w, closeQuote(line, r+1)
		case c != '\\' || r+1 == len(line):
		case q == '\'':
			if line[r+1] == '\'' {
				c, n = '\'', 2
			}
		case line[r+1] == 'x' && r+3 < len(line) && isHex(line[r+2]) && isHex(line[r+3]):
			c, n = unhex(line[r+2])<<4|unhex(line[r+3]), 4
		default:
			c, n = unescape(line[r+1]), 2
		}
		line[w] = c
		r, w = r+n, w+1
	}
	return r, w, errUnbalanced()
}

// unescape is the byte \e stands for in double quotes: \n \r \t \b \a
// as in C, any other e for itself.
func unescape(e byte) byte {
	switch e {
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'b':
		return '\b'
	case 'a':
		return '\a'
	}
	return e
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
