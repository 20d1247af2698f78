using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>
/// For models without native structured outputs: a compact system instruction carrying the minified schema, added
/// to the request in the dialect's system slot.
/// </summary>
public static class SchemaInstruction
{
    private static readonly string[] _noise = ["title", "examples", "$comment", "default"];

    /// <summary>The instruction text for <paramref name="schema"/> (descriptions kept, titles and examples dropped).</summary>
    public static string Build(JsonObject schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var compact = Compact(schema);
        return "Reply with only one JSON value that validates against this JSON Schema; no prose, no code fences.\nSchema: "
            + compact.ToJsonString();
    }

    /// <summary>Adds the instruction for <paramref name="schema"/> to <paramref name="request"/> and marks it modified.</summary>
    public static void Apply(LlmRequest request, JsonObject schema)
    {
        ArgumentNullException.ThrowIfNull(request);
        var text = Build(schema);
        var body = request.Body;
        switch (request.Dialect)
        {
            case LlmDialect.OpenAIChat:
                var messages = body["messages"] as JsonArray ?? [];
                body["messages"] ??= messages;
                messages.Insert(0, new JsonObject { ["role"] = "system", ["content"] = text });
                break;
            case LlmDialect.OpenAIResponses:
                body["instructions"] = SchemaDiscovery.Str(body["instructions"]) is { Length: > 0 } existing ? existing + "\n\n" + text : text;
                break;
            case LlmDialect.AnthropicMessages:
                switch (body["system"])
                {
                    case JsonArray blocks:
                        blocks.Add(new JsonObject { ["type"] = "text", ["text"] = text });
                        break;
                    case JsonValue v when v.TryGetValue<string>(out var s) && s.Length > 0:
                        body["system"] = s + "\n\n" + text;
                        break;
                    default:
                        body["system"] = text;
                        break;
                }

                break;
            default:
                return;
        }

        request.MarkModified();
    }

    private static JsonNode Compact(JsonNode node, bool isNameMap = false)
    {
        switch (node)
        {
            case JsonObject o:
                var result = new JsonObject();
                foreach (var (k, v) in o)
                {
                    // Keys of "properties" / "$defs" are names, never keywords to drop.
                    if (!isNameMap && k != "description" && _noise.Contains(k))
                    {
                        continue;
                    }

                    result[k] = v is null ? null : Compact(v, !isNameMap && k is "properties" or "$defs" or "definitions");
                }

                return result;
            case JsonArray a:
                var array = new JsonArray();
                foreach (var item in a)
                {
                    array.Add(item is null ? null : Compact(item));
                }

                return array;
            default:
                return node.DeepClone();
        }
    }
}
