using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>
/// Finds the schema a request carries: chat <c>response_format: json_schema</c>, Responses <c>text.format</c>,
/// Anthropic <c>output_format</c> / <c>output_config.format</c>, or a tool forced by <c>tool_choice</c> (each dialect's form).
/// </summary>
public static class SchemaDiscovery
{
    /// <summary>The result of looking for a schema in a request.</summary>
    public enum Outcome
    {
        /// <summary>The request asks for no schema-constrained answer.</summary>
        None,
        /// <summary>A schema was found.</summary>
        Found,
        /// <summary>The request names a schema form but its schema is missing or not a JSON object.</summary>
        Malformed,
    }

    /// <summary>Looks for a schema in <paramref name="request"/>; on <see cref="Outcome.Malformed"/> <paramref name="error"/> says why.</summary>
    public static Outcome Find(LlmRequest request, out SchemaTarget? target, out string? error)
    {
        ArgumentNullException.ThrowIfNull(request);
        target = null;
        error = null;
        var body = request.Body;
        return request.Dialect switch
        {
            LlmDialect.OpenAIChat => FindChat(body, out target, out error),
            LlmDialect.OpenAIResponses => FindResponses(body, out target, out error),
            LlmDialect.AnthropicMessages => FindAnthropic(body, out target, out error),
            _ => Outcome.None,
        };
    }

    private static Outcome FindChat(JsonObject body, out SchemaTarget? target, out string? error)
    {
        target = null;
        error = null;
        if (body["response_format"] is JsonObject format && Str(format["type"]) == "json_schema")
        {
            if (format["json_schema"] is not JsonObject js)
            {
                error = "response_format.json_schema must be an object with a 'schema'.";
                return Outcome.Malformed;
            }

            return FromSchemaNode(js["schema"], Str(js["name"]) ?? "response", Bool(js["strict"]), SchemaCarrier.ResponseFormat,
                "response_format.json_schema.schema", out target, out error);
        }

        // tool_choice {type:function, function:{name}} forces one tool: its parameters are the answer's schema.
        if (body["tool_choice"] is JsonObject choice && choice["function"] is JsonObject fn && Str(fn["name"]) is { } toolName
            && FindTool(body["tools"], t => t["function"] is JsonObject f && Str(f["name"]) == toolName) is JsonObject tool)
        {
            var function = (JsonObject)tool["function"]!;
            return FromSchemaNode(function["parameters"], toolName, Bool(function["strict"]), SchemaCarrier.Tool,
                "tools[].function.parameters", out target, out error);
        }

        return Outcome.None;
    }

    private static Outcome FindResponses(JsonObject body, out SchemaTarget? target, out string? error)
    {
        target = null;
        error = null;
        if (body["text"] is JsonObject text && text["format"] is JsonObject format && Str(format["type"]) == "json_schema")
        {
            return FromSchemaNode(format["schema"], Str(format["name"]) ?? "response", Bool(format["strict"]), SchemaCarrier.ResponseFormat,
                "text.format.schema", out target, out error);
        }

        if (body["tool_choice"] is JsonObject choice && Str(choice["type"]) == "function" && Str(choice["name"]) is { } toolName
            && FindTool(body["tools"], t => Str(t["type"]) == "function" && Str(t["name"]) == toolName) is JsonObject tool)
        {
            return FromSchemaNode(tool["parameters"], toolName, Bool(tool["strict"]), SchemaCarrier.Tool,
                "tools[].parameters", out target, out error);
        }

        return Outcome.None;
    }

    private static Outcome FindAnthropic(JsonObject body, out SchemaTarget? target, out string? error)
    {
        target = null;
        error = null;
        var format = body["output_format"] as JsonObject ?? (body["output_config"] as JsonObject)?["format"] as JsonObject;
        if (format is not null && Str(format["type"]) == "json_schema")
        {
            return FromSchemaNode(format["schema"], "response", strict: true, SchemaCarrier.ResponseFormat,
                body.ContainsKey("output_format") ? "output_format.schema" : "output_config.format.schema", out target, out error);
        }

        if (body["tool_choice"] is JsonObject choice && Str(choice["type"]) == "tool" && Str(choice["name"]) is { } toolName
            && FindTool(body["tools"], t => Str(t["name"]) == toolName) is JsonObject tool)
        {
            return FromSchemaNode(tool["input_schema"], toolName, Bool(tool["strict"]), SchemaCarrier.Tool,
                "tools[].input_schema", out target, out error);
        }

        return Outcome.None;
    }

    private static Outcome FromSchemaNode(JsonNode? node, string name, bool strict, SchemaCarrier carrier, string field,
        out SchemaTarget? target, out string? error)
    {
        if (node is not JsonObject schema)
        {
            target = null;
            error = $"{field} must be a JSON Schema object.";
            return Outcome.Malformed;
        }

        target = new SchemaTarget(name, schema, carrier, strict, SchemaSource.Request);
        error = null;
        return Outcome.Found;
    }

    private static JsonObject? FindTool(JsonNode? tools, Func<JsonObject, bool> match)
    {
        if (tools is not JsonArray array)
        {
            return null;
        }

        foreach (var t in array)
        {
            if (t is JsonObject o && match(o))
            {
                return o;
            }
        }

        return null;
    }

    internal static string? Str(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

    private static bool Bool(JsonNode? node) => node is JsonValue v && v.TryGetValue<bool>(out var b) && b;
}
