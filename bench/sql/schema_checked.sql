-- The 10-property schema of the schema_append scenario (type Checked).
SELECT es.define_event_schema('Checked', $json${
  "type": "object",
  "required": ["account", "amount", "currency", "reference", "booked_at"],
  "additionalProperties": false,
  "properties": {
    "account":      {"type": "string", "pattern": "^acct-[0-9]+$"},
    "amount":       {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000},
    "currency":     {"enum": ["EUR", "USD", "GBP"]},
    "note":         {"type": "string", "maxLength": 200},
    "channel":      {"type": "string", "enum": ["web", "app", "branch"]},
    "reference":    {"type": "string", "format": "uuid"},
    "booked_at":    {"type": "string", "format": "date-time"},
    "category":     {"type": "string", "minLength": 1},
    "tags":         {"type": "array", "items": {"type": "string"}, "maxItems": 10},
    "counterparty": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string"}, "iban": {"type": "string", "pattern": "^[A-Z]{2}[0-9]{2}[A-Z0-9]{10,30}$"}}}
  }
}$json$);
