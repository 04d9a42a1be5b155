package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client calls the cluster endpoints of a node's control plane, following
// a follower's redirects to the leader (`cidstore cluster`, and a node
// joining a cluster).
type Client struct {
	// Token is the bearer token the membership endpoints require.
	Token string
	// HTTP makes the requests; nil means a client with a 10 s timeout.
	// Its redirect policy is not used: Client follows redirects itself.
	HTTP *http.Client
}

// APIError is an error answer of a control plane.
type APIError struct {
	Status int    // the HTTP status
	Code   int    `json:"error_code"`
	Msg    string `json:"error_msg"`
	Leader string `json:"leader"` // with 307: the leader's HTTP address
}

func (e *APIError) Error() string {
	if e.Msg == "" {
		return fmt.Sprintf("HTTP status %d", e.Status)
	}
	return fmt.Sprintf("%d: %s", e.Code, e.Msg)
}

// maxRedirects bounds the redirects one call follows.
const maxRedirects = 5

var defaultHTTP = &http.Client{Timeout: 10 * time.Second}

func (c *Client) http() *http.Client {
	h := defaultHTTP
	if c.HTTP != nil {
		h = c.HTTP
	}
	cp := *h
	cp.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cp
}

// baseURL turns a control plane's address ("127.0.0.1:8000", or a URL)
// into a URL.
func baseURL(addr string) string {
	if strings.Contains(addr, "://") {
		return strings.TrimSuffix(addr, "/")
	}
	return "http://" + addr
}

// do sends a request to the node at addr, follows redirects to the
// leader, and decodes a 200 answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, addr, path string, body, out any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	for hop := 0; ; hop++ {
		if addr == "" {
			return errors.New("cluster: no address to ask")
		}
		req, err := http.NewRequestWithContext(ctx, method, baseURL(addr)+path, bytes.NewReader(payload))
		if err != nil {
			return err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
		resp, err := c.http().Do(req)
		if err != nil {
			return err
		}
		err = decodeAnswer(resp, out)
		var ae *APIError
		if errors.As(err, &ae) && ae.Status == http.StatusTemporaryRedirect && ae.Leader != "" && hop < maxRedirects {
			addr = ae.Leader
			continue
		}
		return err
	}
}

// decodeAnswer reads a response: JSON into out on 200, an *APIError
// otherwise.
func decodeAnswer(resp *http.Response, out any) error {
	defer resp.Body.Close()
	body := io.LimitReader(resp.Body, maxBody)
	if resp.StatusCode != http.StatusOK {
		e := &APIError{Status: resp.StatusCode}
		b, _ := io.ReadAll(body)
		if json.Unmarshal(b, e) != nil || e.Msg == "" {
			e.Msg = strings.TrimSpace(string(b))
			e.Code = resp.StatusCode
		}
		return e
	}
	if out == nil {
		_, err := io.Copy(io.Discard, body)
		return err
	}
	return json.NewDecoder(body).Decode(out)
}

// Node returns the status of the node whose control plane is at addr.
func (c *Client) Node(ctx context.Context, addr string) (NodeStatus, error) {
	var ns NodeStatus
	if addr == "" {
		return ns, errors.New("no HTTP address published")
	}
	ctx, cancel := context.WithTimeout(ctx, memberTimeout)
	defer cancel()
	err := c.do(ctx, http.MethodGet, addr, "/cluster/node", nil, &ns)
	return ns, err
}

// Status returns the cluster as the node at addr sees it.
func (c *Client) Status(ctx context.Context, addr string) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, addr, "/cluster", nil, &s)
	return s, err
}

// AddVoter asks the cluster (through the node at addr, redirected to the
// leader) to add a voter.
func (c *Client) AddVoter(ctx context.Context, addr string, req AddRequest) error {
	return c.do(ctx, http.MethodPost, addr, "/cluster/voters", req, nil)
}

// Remove asks the cluster (through the node at addr, redirected to the
// leader) to remove member id.
func (c *Client) Remove(ctx context.Context, addr, id string) error {
	return c.do(ctx, http.MethodDelete, addr, "/cluster/voters/"+url.PathEscape(id), nil, nil)
}
