package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxResponseBytes bounds the answer read; AdmissionReview responses are
// small, a patch included.
const maxResponseBytes = 1 << 20

// reviewer posts AdmissionReviews to one endpoint of the server and checks
// each answer: HTTP/1.1 200, the request's UID, allowed.
type reviewer struct {
	client    *http.Client
	url       string
	templates []bodyTemplate
}

// do is a request: it alternates between the templates.
func (r *reviewer) do(ctx context.Context, seq uint64) error {
	body := r.templates[seq%uint64(len(r.templates))].render(seq)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		return err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	_ = resp.Body.Close()
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data[:min(len(data), 300)])))
	}
	if resp.ProtoMajor != 1 {
		return fmt.Errorf("answered over %s, want HTTP/1.1", resp.Proto)
	}
	return checkAllowed(data, requestUID(seq))
}

// checkAllowed decodes an AdmissionReview answer and wants it to allow the
// request with UID uid.
func checkAllowed(data []byte, uid string) error {
	var review struct {
		Response *struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
			Status  *struct {
				Message string `json:"message"`
			} `json:"status"`
		} `json:"response"`
	}
	if err := json.Unmarshal(data, &review); err != nil {
		return fmt.Errorf("decoding the AdmissionReview answer: %w", err)
	}
	switch resp := review.Response; {
	case resp == nil:
		return fmt.Errorf("AdmissionReview answer without response")
	case resp.UID != uid:
		return fmt.Errorf("answer for UID %q, want %q", resp.UID, uid)
	case !resp.Allowed:
		msg := "no message"
		if resp.Status != nil {
			msg = resp.Status.Message
		}
		return fmt.Errorf("compliant object denied: %s", msg)
	}
	return nil
}
