using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenGateway.Core.Dialects;

/// <summary>Why a body could not be parsed: a message for the client and the offending field, if any.</summary>
public readonly record struct RequestParseError(string Message, string? Param);

/// <summary>Parses and validates a client body for one dialect; never throws on bad input.</summary>
public static class LlmRequestParser
{
    /// <summary>Maximum JSON nesting accepted from clients (adversarial depth is rejected as 400).</summary>
    public const int MaxDepth = 128;

    /// <summary>OpenAI's limit on chat completions' <c>n</c>.</summary>
    public const int MaxChoices = 128;

    private static readonly JsonNodeOptions _nodeOptions = new() { PropertyNameCaseInsensitive = false };
    // Duplicate property names are refused while parsing: a lazily materialised JsonObject would otherwise throw on
    // first access to the duplicated object (a 500 deep in a later stage), and "which value wins" differs between
    // the gateway and the provider.
    private static readonly JsonDocumentOptions _documentOptions = new() { MaxDepth = MaxDepth, AllowTrailingCommas = false, AllowDuplicateProperties = false };

    /// <summary>Serializer options used whenever a rewritten body is written: compact and without HTML escaping.</summary>
    public static readonly JsonSerializerOptions WriteOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        WriteIndented = false,
    };

    /// <summary>Parses <paramref name="body"/>; on failure returns false with a client-facing error.</summary>
    public static bool TryParse(LlmDialect dialect, ReadOnlyMemory<byte> body, out LlmRequest? request, out RequestParseError error)
    {
        request = null;
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(body.Span, _nodeOptions, _documentOptions);
        }
        catch (JsonException ex)
        {
            error = InvalidJson(ex);
            return false;
        }

        return TryCreate(dialect, node as JsonObject, body, document: null, out request, out error);
    }

    /// <summary>
    /// Parses <paramref name="body"/> without copying it: the tree reads straight from <paramref name="body"/>, which
    /// must stay unchanged until the returned request is disposed (disposing returns the parser's pooled metadata;
    /// the tree must not be read afterwards). The proxy uses this for bodies it owns for the request's lifetime.
    /// </summary>
    public static bool TryParseBorrowed(LlmDialect dialect, ReadOnlyMemory<byte> body, out LlmRequest? request, out RequestParseError error)
    {
        request = null;
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, _documentOptions);
        }
        catch (JsonException ex)
        {
            error = InvalidJson(ex);
            return false;
        }

        var root = document.RootElement.ValueKind == JsonValueKind.Object ? JsonObject.Create(document.RootElement, _nodeOptions) : null;
        if (!TryCreate(dialect, root, body, document, out request, out error))
        {
            document.Dispose();
            return false;
        }

        return true;
    }

    private static RequestParseError InvalidJson(JsonException ex) => new($"The request body is not valid JSON: {ex.Message.Split('.')[0]}.", null);

    private static bool TryCreate(LlmDialect dialect, JsonObject? obj, ReadOnlyMemory<byte> body, JsonDocument? document, out LlmRequest? request, out RequestParseError error)
    {
        request = null;
        if (obj is null)
        {
            error = new("The request body must be a JSON object.", null);
            return false;
        }

        if (obj["model"] is not JsonValue modelValue || !modelValue.TryGetValue<string>(out var model) || string.IsNullOrWhiteSpace(model))
        {
            error = new("'model' is required and must be a non-empty string.", "model");
            return false;
        }

        var required = dialect switch
        {
            LlmDialect.OpenAIChat or LlmDialect.AnthropicMessages or LlmDialect.AnthropicCountTokens => "messages",
            LlmDialect.OpenAIResponses or LlmDialect.OpenAIEmbeddings => "input",
            _ => null,
        };
        if (required is not null)
        {
            var value = obj[required];
            var ok = required == "messages" ? value is JsonArray : value is JsonArray || (value is JsonValue s && s.GetValueKind() == JsonValueKind.String);
            if (!ok)
            {
                error = new(required == "messages"
                    ? "'messages' is required and must be an array."
                    : "'input' is required and must be a string or an array.", required);
                return false;
            }
        }

        if (obj["stream"] is { } stream && stream.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False or JsonValueKind.Null))
        {
            error = new("'stream' must be a boolean.", "stream");
            return false;
        }

        if (dialect == LlmDialect.OpenAIChat && obj["n"] is { } n && n.GetValueKind() != JsonValueKind.Null
            && (n is not JsonValue nValue || !nValue.TryGetValue<int>(out var choices) || choices is < 1 or > MaxChoices))
        {
            error = new($"'n' must be an integer from 1 to {MaxChoices}.", "n");
            return false;
        }

        request = new LlmRequest(dialect, obj, body, document);
        error = default;
        return true;
    }
}
