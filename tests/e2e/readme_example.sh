#!/usr/bin/env bash
# What README.md shows (between the "readme-example" marker and the fence); the e2e suite runs
# README.md's own block when it has one, else this file, against a running `intake serve`.
set -euo pipefail

# readme-example: signed form post
# In the shell where `intake serve` runs (or ran): the same INTAKE_FORM_CONTACT_SECRET.
: "${INTAKE_FORM_CONTACT_SECRET:?export the secret intake serve was started with}"
URL=${URL:-http://127.0.0.1:8080}
body='{"name": "Ada Lovelace", "email": "ada@example.com", "subject": "Where is my order?", "message": "Order 1815 has not arrived yet."}'
ts=$(date +%s)
sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$INTAKE_FORM_CONTACT_SECRET" | sed 's/^.* //')
curl -sS --fail-with-body "$URL/webhooks/forms/contact" \
  -H 'Content-Type: application/json' \
  -H "X-Intake-Timestamp: $ts" \
  -H "X-Intake-Signature: sha256=$sig" \
  --data-binary "$body"
echo   # {"receipt": "01K..."}: accepted; the queue consumer makes the ticket in the background
sleep 1
curl -sS --fail-with-body "$URL/tickets"
echo   # {"items": [{"id": ..., "subject": "Where is my order?", ...}], "next": null}
