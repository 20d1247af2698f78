using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.StructuredOutput;

/// <summary>
/// Builds a repair call: the request as it was sent, plus the invalid answer as an assistant turn and the validation
/// errors, stated compactly, as a user turn. Always non-streaming.
/// </summary>
public static class RepairRequest
{
    /// <summary>Errors listed in the repair prompt; the rest are summarised as a count.</summary>
    public const int MaxListedErrors = 8;

    /// <summary>The compact error list sent to the model.</summary>
    public static string Feedback(IReadOnlyList<SchemaError> errors)
    {
        ArgumentNullException.ThrowIfNull(errors);
        var sb = new StringBuilder("Your previous reply does not validate against the required JSON schema:\n");
        foreach (var e in errors.Take(MaxListedErrors))
        {
            sb.Append("- ").Append(e.Pointer.Length == 0 ? "(root)" : e.Pointer).Append(": ").Append(e.Message).Append('\n');
        }

        if (errors.Count > MaxListedErrors)
        {
            sb.Append("- … and ").Append(errors.Count - MaxListedErrors).Append(" more\n");
        }

        return sb.Append("Reply again with only the corrected JSON.").ToString();
    }

    /// <summary>The repair request body for <paramref name="sent"/> (not modified).</summary>
    public static JsonObject Build(LlmDialect dialect, JsonObject sent, string invalidAnswer, IReadOnlyList<SchemaError> errors)
    {
        ArgumentNullException.ThrowIfNull(sent);
        ArgumentNullException.ThrowIfNull(invalidAnswer);
        var body = (JsonObject)sent.DeepClone();
        body.Remove("stream");
        body.Remove("stream_options");
        var previous = invalidAnswer.Trim();
        if (previous.Length == 0)
        {
            previous = "(empty reply)";
        }

        var feedback = Feedback(errors);
        switch (dialect)
        {
            case LlmDialect.OpenAIResponses:
                if (body["input"] is not JsonArray input)
                {
                    input = SchemaDiscovery.Str(body["input"]) is { } text
                        ? new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text })
                        : [];
                    body["input"] = input;
                }

                input.Add(new JsonObject { ["role"] = "assistant", ["content"] = previous });
                input.Add(new JsonObject { ["role"] = "user", ["content"] = feedback });
                break;
            default:
                if (body["messages"] is not JsonArray messages)
                {
                    messages = [];
                    body["messages"] = messages;
                }

                messages.Add(new JsonObject { ["role"] = "assistant", ["content"] = previous });
                messages.Add(new JsonObject { ["role"] = "user", ["content"] = feedback });
                break;
        }

        return body;
    }
}
