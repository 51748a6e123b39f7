/// The API as OpenAPI 3.1, served verbatim at `/openapi.json`; the fuzz test derives request
/// bodies from the request schemas here, so they must stay in step with `RequestParser`.
enum OpenAPIDocument {
    static let json = #"""
    {
      "openapi": "3.1.0",
      "info": {"title": "calm serve", "version": "1.0.0",
               "description": "OpenAI-compatible completions over CALM models and compositions. Errors: {\"error\": {\"message\", \"type\", \"param\", \"code\"}}."},
      "paths": {
        "/health": {"get": {"responses": {"200": {"description": "Serving"}}}},
        "/metrics": {"get": {"responses": {"200": {"description": "Prometheus text format"}}}},
        "/openapi.json": {"get": {"responses": {"200": {"description": "This document"}}}},
        "/v1/models": {"get": {"responses": {"200": {"description": "Served models and compositions"}, "401": {"$ref": "#/components/responses/Error"}}}},
        "/v1/completions": {"post": {
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CompletionRequest"}}}},
          "responses": {"200": {"description": "A completion, or server-sent chunks ending in data: [DONE] when stream is true"},
                        "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"},
                        "404": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"},
                        "429": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}},
        "/v1/chat/completions": {"post": {
          "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ChatRequest"}}}},
          "responses": {"200": {"description": "A chat completion, or server-sent chunks ending in data: [DONE] when stream is true"},
                        "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"},
                        "404": {"$ref": "#/components/responses/Error"}, "413": {"$ref": "#/components/responses/Error"},
                        "429": {"$ref": "#/components/responses/Error"}, "503": {"$ref": "#/components/responses/Error"}}}}
      },
      "components": {
        "responses": {"Error": {"description": "OpenAI-style error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
        "schemas": {
          "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object",
            "required": ["message", "type"], "properties": {"message": {"type": "string"}, "type": {"type": "string"},
            "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}}},
          "Calm": {"type": "object", "additionalProperties": false, "properties": {
            "gates": {"type": "boolean", "description": "Per-token gate value of every bridge (compositions only)"},
            "ignore_eos": {"type": "boolean", "description": "Keep generating past end-of-sequence"}}},
          "CompletionRequest": {"type": "object", "required": ["model", "prompt"], "additionalProperties": false, "properties": {
            "model": {"type": "string"},
            "prompt": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 1},
                                 {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1}]},
            "max_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "seed": {"type": "integer"},
            "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
            "stream": {"type": "boolean"},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
            "logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
            "n": {"type": "integer", "minimum": 1, "maximum": 1},
            "echo": {"type": "boolean"}, "best_of": {"type": "integer", "minimum": 1, "maximum": 1},
            "presence_penalty": {"type": "number", "minimum": 0, "maximum": 0},
            "frequency_penalty": {"type": "number", "minimum": 0, "maximum": 0},
            "user": {"type": "string"},
            "calm": {"$ref": "#/components/schemas/Calm"}}},
          "ChatRequest": {"type": "object", "required": ["model", "messages"], "additionalProperties": false, "properties": {
            "model": {"type": "string"},
            "messages": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["role", "content"], "properties": {
              "role": {"enum": ["system", "developer", "user", "assistant"]},
              "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object",
                "properties": {"type": {"enum": ["text"]}, "text": {"type": "string"}}}}]},
              "name": {"type": "string"}}}},
            "max_tokens": {"type": "integer", "minimum": 1},
            "max_completion_tokens": {"type": "integer", "minimum": 1},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2},
            "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "seed": {"type": "integer"},
            "stop": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "maxItems": 4}]},
            "stream": {"type": "boolean"},
            "stream_options": {"type": "object", "properties": {"include_usage": {"type": "boolean"}}},
            "logprobs": {"type": "boolean"},
            "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
            "n": {"type": "integer", "minimum": 1, "maximum": 1},
            "presence_penalty": {"type": "number", "minimum": 0, "maximum": 0},
            "frequency_penalty": {"type": "number", "minimum": 0, "maximum": 0},
            "user": {"type": "string"},
            "calm": {"$ref": "#/components/schemas/Calm"}}}
        }
      }
    }
    """#
}
