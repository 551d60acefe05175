package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ParseList reads an OpenAI-style model list, as GET /v1/models answers it
// (`{"object": "list", "data": [{"id": …, "created": …}, …]}`). Entries
// without a usable id (empty, not text) are skipped; a body without a
// "data" array is an error.
func ParseList(body []byte) ([]Listed, error) {
	var doc struct {
		Data *[]struct {
			ID      any             `json:"id"`
			Created json.RawMessage `json:"created"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("cannot read the model list: %w", err)
	}
	if doc.Data == nil {
		return nil, errors.New(`the model list has no "data" array`)
	}
	out := make([]Listed, 0, len(*doc.Data))
	for _, e := range *doc.Data {
		id, ok := e.ID.(string)
		if !ok || !usableID(id) {
			continue
		}
		var created int64
		_ = json.Unmarshal(e.Created, &created) // absent or odd: 0
		out = append(out, Listed{ID: id, Created: created})
	}
	return out, nil
}

// usableID: an id a client can send back in a JSON body and a URL path.
func usableID(id string) bool {
	return id != "" && len(id) <= 256 && utf8.ValidString(id) && !strings.ContainsFunc(id, unicode.IsControl)
}
