package fieftest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
)

// readJSONObject reads the request body (at most maxBodyBytes) as a JSON
// object, numbers kept as json.Number. On failure it answers like FastAPI
// (413 for a body over the cap, 422 otherwise) and reports false.
func readJSONObject(w http.ResponseWriter, r *http.Request) (map[string]any, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeDetail(w, http.StatusRequestEntityTooLarge)
		} else {
			writeDetail(w, http.StatusBadRequest)
		}
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	err = dec.Decode(&v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("extra data after the JSON value")
		}
	}
	if err != nil {
		var pos int64
		if syntax := (*json.SyntaxError)(nil); errors.As(err, &syntax) {
			pos = syntax.Offset
		}
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{{
			"type":  "json_invalid",
			"loc":   []any{"body", pos},
			"msg":   "JSON decode error",
			"input": map[string]any{},
			"ctx":   map[string]any{"error": err.Error()},
		}}})
		return nil, false
	}
	obj, ok := v.(map[string]any)
	if !ok {
		writeValidationError(w, "model_attributes_type", []any{"body"},
			"Input should be a valid dictionary or object to extract fields from", v)
		return nil, false
	}
	return obj, true
}

// readStringField reads the request body as a JSON object and returns its
// string member name, answering 422 if it is missing or not a string.
func readStringField(w http.ResponseWriter, r *http.Request, name string) (string, bool) {
	body, ok := readJSONObject(w, r)
	if !ok {
		return "", false
	}
	v, present := body[name]
	if !present {
		writeMissing(w, name)
		return "", false
	}
	str, ok := v.(string)
	if !ok {
		writeValidationError(w, "string_type", []any{"body", name}, "Input should be a valid string", v)
		return "", false
	}
	return str, true
}

// writeMissing answers 422 for a missing body member, like pydantic.
func writeMissing(w http.ResponseWriter, name string) {
	writeValidationError(w, "missing", []any{"body", name}, "Field required", nil)
}

// writeValidationError answers 422 with one pydantic-style error.
func writeValidationError(w http.ResponseWriter, typ string, loc []any, msg string, input any) {
	writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"detail": []map[string]any{{
		"type":  typ,
		"loc":   loc,
		"msg":   msg,
		"input": input,
	}}})
}
