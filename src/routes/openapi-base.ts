// The parts of openapi.yaml that no route schema carries: the document's header, the choices DriftDB made where the
// contract is silent, tags, and the shared problem responses and headers that routes refer to by status and name.

export const openApiBase = {
  "openapi": "3.1.0",
  "info": {
    "title": "DriftDB HTTP API",
    "version": "0.1.0",
    "description": "DriftDB is a time-travel JSON document database served over HTTPS. Every committed write is an immutable event: any table can be read as it was at any earlier point (`asOf`), and every key keeps its full history.\n\nThis document is generated from the routes the server registers and their schemas (`npm run openapi`; a test fails when it is stale); `GET /openapi.json` serves it as JSON. The contract it follows is http-api.md; where that is silent, `x-driftdb-notes` below records what DriftDB chose.\n\n- Bodies are JSON (`application/json`; PATCH also takes `application/merge-patch+json`). Answers are `application/json; charset=utf-8`.\n- Errors are RFC 9457 problem details (`application/problem+json`) with a stable `code`, plus `currentSeq` (412), `errors` (400 validation_failed) or `retryable` (409) where they apply. No error carries a stack trace or a server path; no malformed request is answered with a 5xx.\n- Every `/v1` route but POST /v1/auth/token needs credentials (HTTP Basic, or a bearer token from POST /v1/auth/token) and the permission named by its `x-driftdb-permission`: role `reader` has read, `writer` read and write, `admin` everything.\n- Every GET route also answers HEAD.",
    "license": {
      "name": "MIT",
      "identifier": "MIT"
    }
  },
  "x-driftdb-notes": [
    "Table names in paths: a name that cannot exist (not matching the table-name pattern, or starting with the reserved \"_\") answers 400 validation_failed rather than 404, as it does when creating a table.",
    "GET /v1/tables lists the tables users created; names starting with \"_\" are the system's and are neither listed nor served.",
    "Request bodies of the table, index, query and batch routes are closed (a batch op takes exactly the members of its kind of op): an unknown member is 400 validation_failed (a misspelt `where` must not answer every row), and their values are taken as sent, without type coercion (\"limit\": \"10\" is 400). Query strings are closed too (`?asof=` is 400, not the newest state); their values are text and are converted (`limit=10`).",
    "Documents are free-form JSON objects. A PUT or PATCH body that is not an object (array, string, number, null) is 400 validation_failed; malformed JSON is 400 bad_request.",
    "Numbers round-trip as IEEE-754 doubles. An integer literal beyond ±(2^53−1), or a literal that overflows a double (1e400), is 400 validation_failed: send such values as strings. -0 is stored as 0.",
    "Answers are bounded by their JSON text, not only by row counts: a page or query answer ends early, with a nextCursor, before its rows would pass 16 MiB (pageBytesMax; it always holds at least one row); a batch's results may hold 32 MiB (batchAnswerBytesMax), past which the op that crossed it fails with 400 bad_request and its opIndex; a key's history route answers at most 32 MiB (historyBytesMax), past which it is 400 bad_request and a history query pages through the versions instead.",
    "Documents and queries nest at most 64 levels (the document is level 1; every object or array inside adds one); deeper is 400. Documents are at most 4 MiB as JSON text and request bodies at most 8 MiB (413 payload_too_large).",
    "Members named __proto__, constructor or prototype are ordinary members: stored, returned, patched and queried like any other.",
    "Keys are 1 to 1024 UTF-16 code units and compare as exact strings: no Unicode normalization (NFC \"ü\" and NFD \"u\" + U+0308 are two keys), no case folding. Percent-encode keys in paths; a \"/\" inside a key is %2F. The keys \".\" and \"..\" cannot be reached through clients that resolve dot segments in URLs.",
    "If-Match takes * or exactly one strong ETag as DriftDB sends it (\"42\"); weak tags (W/\"42\"), lists and unquoted values are 400 bad_request. If-None-Match on a write takes only *. When both are sent, both must hold. A deleted row does not exist for If-None-Match: * and If-Match: *.",
    "GET of a row honours If-None-Match (weak comparison, or *): 304 Not Modified with the ETag when the client already holds the version read.",
    "DELETE of a row answers 200 {key, seq} with an ETag (not 204), so the client learns the seq of the delete event.",
    "Creating or dropping an index needs write permission; dropping a table needs admin. Dropping an index the table does not have is 404 not_found.",
    "POST /v1/tables answers 201 with a Location header naming the new table.",
    "In a query body `asOf` may be an integer seq or a string (a decimal seq or an RFC 3339 instant); in query strings it is always text. Page and query `limit` both default to 100.",
    "Authentication here is HTTP Basic; routes the contract promises for later issues (tokens, users, audit) appear in this document once the server registers them.",
    "GET /metrics answers the Prometheus text format (text/plain; version=0.0.4) and needs role admin, unless the server runs with --metrics-public: then it needs no credentials."
  ],
  "servers": [
    {
      "url": "https://127.0.0.1:8443",
      "description": "driftdb serve with its defaults"
    }
  ],
  "security": [
    {
      "basicAuth": []
    },
    {
      "bearerAuth": []
    }
  ],
  "tags": [
    {
      "name": "health",
      "description": "Liveness, readiness and this document; no authentication."
    },
    {
      "name": "tables",
      "description": "http-api.md §3."
    },
    {
      "name": "rows",
      "description": "http-api.md §4."
    },
    {
      "name": "query",
      "description": "http-api.md §5."
    },
    {
      "name": "transactions",
      "description": "http-api.md §6."
    },
    {
      "name": "policies",
      "description": "http-api.md §8: row policies (row-level security), role admin."
    },
    {
      "name": "admin",
      "description": "http-api.md §7; role admin: engine figures, checkpoints, the slow-query log and the Prometheus metrics."
    },
    {
      "name": "page",
      "description": "The admin page's static files (HTML, scripts, styles), served at /admin/ without authentication; the page signs in against the API."
    }
  ],
  "components": {
    "securitySchemes": {
      "basicAuth": {
        "type": "http",
        "scheme": "basic",
        "description": "A DriftDB user and password."
      },
      "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "A token from POST /v1/auth/token (`ddb_` + 43 base64url characters), valid until its expiresAt or until revoked."
      }
    },
    "responses": {
      "BadRequest": {
        "description": "bad_request (a malformed header or JSON body) or validation_failed (with `errors`, Ajv style).",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "Unauthorized": {
        "description": "unauthorized: missing, malformed or wrong credentials.",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        },
        "headers": {
          "WWW-Authenticate": {
            "$ref": "#/components/headers/WWWAuthenticate"
          }
        }
      },
      "Forbidden": {
        "description": "forbidden: the user's roles do not allow this route.",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "NotFound": {
        "description": "table_not_found, row_not_found, transaction_not_found or not_found.",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "Conflict": {
        "description": "table_exists, index_exists, serialization_failure, deadlock_detected, lock_timeout (these three with `retryable: true`), transaction_aborted, read_only, or idempotency_in_progress (a request with this Idempotency-Key is still running).",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "Gone": {
        "description": "transaction_expired: the transaction idled past --tx-idle-timeout-ms and was rolled back.",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "PreconditionFailed": {
        "description": "precondition_failed: If-Match / If-None-Match (or a batch op's ifSeq) does not hold; `currentSeq` is the seq of the row's last event (its delete, if deleted), null if the key was never written.",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "UnprocessableContent": {
        "description": "idempotency_key_reused: this Idempotency-Key was used for another request (method, path or body bytes differ).",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "PayloadTooLarge": {
        "description": "payload_too_large: the request body or a document is over its limit.",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "UnsupportedMediaType": {
        "description": "unsupported_media_type: the body is not application/json (or application/merge-patch+json).",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "Locked": {
        "description": "user_locked: too many failed logins; the user is locked for --lockout-ms.",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "TooManyRequests": {
        "description": "rate_limited.",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        },
        "headers": {
          "Retry-After": {
            "$ref": "#/components/headers/RetryAfter"
          }
        }
      },
      "InternalError": {
        "description": "internal: a bug. The body names a request id and never carries server details.",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        }
      },
      "Unavailable": {
        "description": "unavailable: recovery not finished, shutting down, the log cannot be written, or a capacity bound is hit.",
        "content": {
          "application/problem+json": {
            "schema": {
              "$ref": "#/components/schemas/Problem"
            }
          }
        },
        "headers": {
          "Retry-After": {
            "$ref": "#/components/headers/RetryAfter"
          }
        }
      }
    },
    "headers": {
      "ETag": {
        "description": "The seq of the version written or read, as a strong entity tag: \"<seq>\". Absent for a write inside an open transaction.",
        "schema": {
          "type": "string",
          "examples": [
            "\"42\""
          ]
        }
      },
      "IdempotentReplayed": {
        "description": "true when the answer is the one stored for the request's Idempotency-Key, replayed: the write was not made again.",
        "schema": {
          "type": "string",
          "enum": [
            "true"
          ]
        }
      },
      "Location": {
        "description": "The URL of the created table (201), or where to go instead (308).",
        "schema": {
          "type": "string"
        }
      },
      "RetryAfter": {
        "description": "Seconds to wait before retrying.",
        "schema": {
          "type": "integer",
          "minimum": 0
        }
      },
      "WWWAuthenticate": {
        "description": "The Basic challenge.",
        "schema": {
          "type": "string",
          "examples": [
            "Basic realm=\"driftdb\", charset=\"UTF-8\""
          ]
        }
      }
    }
  }
} as const;
