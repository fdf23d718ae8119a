package fieftest

import (
	"encoding/json"
	"net/http"
)

// maxBodyBytes caps every request body the Server reads.
const maxBodyBytes = 1 << 20

// writeJSON writes v as a JSON response.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, `{"detail":"Internal Server Error"}`, http.StatusInternalServerError)
		return
	}
	writeRawJSON(w, status, b)
}

// writeRawJSON writes body, already JSON, as the response.
func writeRawJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeDetail answers status with FastAPI's default body
// {"detail":"<reason phrase>"}.
func writeDetail(w http.ResponseWriter, status int) {
	writeJSON(w, status, map[string]any{"detail": reasonPhrase(status)})
}

// reasonPhrase returns the HTTP reason phrase of status.
func reasonPhrase(status int) string {
	if text := http.StatusText(status); text != "" {
		return text
	}
	return "Error"
}
