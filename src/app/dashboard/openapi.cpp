// The OpenAPI 3.0 description of /api/v1, served at /api/v1/openapi.json: the API's reference
// (docs/dashboard.md points here).
#include "handlers.hpp"

namespace devin_orch::app::dashboard {

const std::string& openapi_document() {
  static const std::string document = R"json({
  "openapi": "3.0.3",
  "info": {
    "title": "devin-orch API",
    "version": "1",
    "description": "Jobs of a devin-orch daemon: list, read, add, cancel and retry. Reads need nothing; writes need the bearer token of dashboard.token_file (without one, writes are refused with 403). Errors are {\"error\": text, \"status\": code}."
  },
  "servers": [{"url": "/api/v1"}],
  "components": {
    "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
    "schemas": {
      "Error": {"type": "object", "required": ["error", "status"],
        "properties": {"error": {"type": "string"}, "status": {"type": "integer"}}},
      "JobRow": {"type": "object", "description": "One row of `devin-orch ls --json` (docs/cli.md).",
        "properties": {
          "key": {"type": "string"}, "state": {"type": "string"}, "org_id": {"type": "string"},
          "session_id": {"type": "string", "nullable": true}, "status": {"type": "string", "nullable": true},
          "status_detail": {"type": "string", "nullable": true}, "url": {"type": "string", "nullable": true},
          "attempts": {"type": "integer"}, "error": {"type": "string", "nullable": true},
          "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
          "started_at": {"type": "string", "nullable": true}, "finished_at": {"type": "string", "nullable": true},
          "duration_s": {"type": "number", "nullable": true}, "acus_consumed": {"type": "number", "nullable": true},
          "reason": {"type": "string", "nullable": true}, "reason_code": {"type": "string", "nullable": true},
          "reason_until": {"type": "string", "nullable": true}}},
      "JobDetail": {"type": "object", "description": "The object `devin-orch show --json` prints (docs/cli.md).",
        "required": ["definition", "outcome", "history"],
        "properties": {"definition": {"$ref": "#/components/schemas/JobDefinition"},
          "outcome": {"type": "object"}, "history": {"type": "array", "items": {"type": "object"}}}},
      "JobDefinition": {"type": "object", "required": ["key", "prompt"],
        "description": "One job in the format of `devin-orch enqueue --stdin` (docs/cli.md); unknown fields are refused.",
        "properties": {
          "key": {"type": "string", "minLength": 1, "maxLength": 512}, "prompt": {"type": "string"},
          "title": {"type": "string"}, "tags": {"type": "array", "items": {"type": "string"}},
          "repos": {"type": "array", "items": {"type": "string"}},
          "attachments": {"type": "array", "items": {"type": "string"}, "maxItems": 20, "description": "Absolute paths of files on the daemon's machine, uploaded once before the create."},
          "org_id": {"type": "string", "nullable": true},
          "priority": {"type": "integer"}, "not_before": {"type": "string", "format": "date-time", "nullable": true},
          "deadline": {"type": "string", "format": "date-time", "nullable": true},
          "max_attempts": {"type": "integer", "nullable": true}, "create_as_user_id": {"type": "string"},
          "playbook_id": {"type": "string"}, "child_playbook_id": {"type": "string"},
          "knowledge_ids": {"type": "array", "items": {"type": "string"}},
          "secret_ids": {"type": "array", "items": {"type": "string"}}, "max_acu_limit": {"type": "integer"},
          "structured_output_schema": {"type": "string"}, "devin_mode": {"type": "string"},
          "resumable": {"type": "boolean"}, "concurrency_key": {"type": "string"}, "on_waiting_for_user": {}, "messages": {"type": "array", "items": {"type": "string"}},
          "complete_on": {"type": "string"}, "fan_out": {}, "notify": {"type": "array", "items": {"type": "object"}},
          "stall_after": {"type": "string", "description": "a duration like 30m"},
          "stall_after_ms": {"type": "integer"},
          "stall_action": {"type": "string", "enum": ["report", "message", "terminate"]}}},
      "Result": {"type": "object", "properties": {"key": {"type": "string"}, "result": {"type": "string"},
        "generation": {"type": "integer"}, "differs": {"type": "array", "items": {"type": "string"}}}}
    },
    "responses": {
      "Error": {"description": "A problem, explained", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    },
    "parameters": {
      "key": {"name": "key", "in": "path", "required": true, "schema": {"type": "string"},
        "description": "The job's key, percent-encoded"}
    }
  },
  "paths": {
    "/jobs": {
      "get": {
        "summary": "List jobs (as `devin-orch ls --json`)",
        "parameters": [
          {"name": "state", "in": "query", "schema": {"type": "string"}, "description": "Only this state; repeat for several"},
          {"name": "org", "in": "query", "schema": {"type": "string"}},
          {"name": "tag", "in": "query", "schema": {"type": "string"}},
          {"name": "older-than", "in": "query", "schema": {"type": "string"}, "description": "A duration: 90s, 2h, 7d"},
          {"name": "newer-than", "in": "query", "schema": {"type": "string"}},
          {"name": "sort", "in": "query", "schema": {"type": "string", "enum": ["created", "updated", "key", "state"]}},
          {"name": "reverse", "in": "query", "schema": {"type": "boolean"}},
          {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}}
        ],
        "responses": {
          "200": {"description": "The jobs", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/JobRow"}}}}},
          "400": {"$ref": "#/components/responses/Error"}
        }
      },
      "post": {
        "summary": "Add one job (as one line of `devin-orch enqueue --stdin`)",
        "security": [{"bearer": []}],
        "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobDefinition"}}}},
        "responses": {
          "201": {"description": "Added (result added), or an invalid job mended (result mended)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
          "200": {"description": "The same definition is already there (result unchanged)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
          "400": {"$ref": "#/components/responses/Error"}, "401": {"$ref": "#/components/responses/Error"},
          "403": {"$ref": "#/components/responses/Error"},
          "409": {"description": "The key exists with another definition (not applied); `differs` names the fields", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
          "413": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/jobs/{key}": {
      "get": {
        "summary": "One job (as `devin-orch show --json`)",
        "parameters": [{"$ref": "#/components/parameters/key"}],
        "responses": {
          "200": {"description": "The job", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobDetail"}}}},
          "404": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/jobs/{key}/cancel": {
      "post": {
        "summary": "Cancel a job (as `devin-orch cancel`)",
        "security": [{"bearer": []}],
        "parameters": [{"$ref": "#/components/parameters/key"},
          {"name": "archive", "in": "query", "schema": {"type": "boolean"}, "description": "Also archive the session"}],
        "responses": {
          "200": {"description": "result cancelled (it was queued) or requested (the daemon terminates its session)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
          "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/jobs/{key}/retry": {
      "post": {
        "summary": "Queue an ended job again as a new generation (as `devin-orch retry`)",
        "security": [{"bearer": []}],
        "parameters": [{"$ref": "#/components/parameters/key"}],
        "responses": {
          "200": {"description": "result requeued, with the new generation", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Result"}}}},
          "401": {"$ref": "#/components/responses/Error"}, "403": {"$ref": "#/components/responses/Error"},
          "404": {"$ref": "#/components/responses/Error"}, "409": {"$ref": "#/components/responses/Error"}
        }
      }
    },
    "/openapi.json": {
      "get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.0"}}}
    }
  }
}
)json";
  return document;
}

}  // namespace devin_orch::app::dashboard
