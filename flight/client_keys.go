package flight

import (
	"context"
	"time"
)

// CreateKey asks the server for an API key. The answer holds the key,
// which the server does not keep.
func (c *Client) CreateKey(ctx context.Context, user string, role Role, expiresIn time.Duration) (*CreatedKey, error) {
	var k CreatedKey
	body := CreateKeyBody{User: user, Role: string(role)}
	if expiresIn > 0 {
		body.ExpiresInSeconds = int64((expiresIn + time.Second - 1) / time.Second)
	}
	if err := c.call(ctx, ActionCreateKey, body, &k); err != nil {
		return nil, err
	}
	return &k, nil
}

// ListKeys lists the server's API keys (never the keys themselves).
func (c *Client) ListKeys(ctx context.Context) ([]KeyInfo, error) {
	var ks []KeyInfo
	return ks, c.call(ctx, ActionListKeys, struct{}{}, &ks)
}

// RevokeKey revokes an API key by its id.
func (c *Client) RevokeKey(ctx context.Context, id string) (*KeyInfo, error) {
	var k KeyInfo
	if err := c.call(ctx, ActionRevokeKey, KeyIDBody{ID: id}, &k); err != nil {
		return nil, err
	}
	return &k, nil
}
