using System.Text.Json;
using System.Text.Json.Nodes;

namespace TokenGateway.Core.Dialects;

/// <summary>
/// A client request parsed once into a mutable JSON tree plus typed accessors that every stage shares.
/// </summary>
/// <remarks>
/// The original bytes are kept so that a request no stage changed is forwarded byte-identical; a stage that
/// changes <see cref="Body"/> must call <see cref="MarkModified"/> so the body is serialized (once) before forwarding.
/// </remarks>
public sealed class LlmRequest : IDisposable
{
    private readonly JsonDocument? _document;

    internal LlmRequest(LlmDialect dialect, JsonObject body, ReadOnlyMemory<byte> originalBytes, JsonDocument? document = null)
    {
        Dialect = dialect;
        Body = body;
        OriginalBytes = originalBytes;
        Model = (string)body["model"]!;
        _document = document;
    }

    /// <summary>The API surface the request came to.</summary>
    public LlmDialect Dialect { get; }

    /// <summary>The parsed body; stages rewrite it in place.</summary>
    public JsonObject Body { get; }

    /// <summary>The body exactly as the client sent it.</summary>
    public ReadOnlyMemory<byte> OriginalBytes { get; }

    /// <summary>The model name as the client sent it (an alias is resolved by the catalogue, not here).</summary>
    public string Model { get; }

    /// <summary>True once any stage changed <see cref="Body"/>.</summary>
    public bool IsModified { get; private set; }

    /// <summary>True when the client asked for a server-sent-event stream.</summary>
    public bool Stream => Body["stream"] is JsonValue v && v.TryGetValue<bool>(out var b) && b;

    /// <summary>Name of the field that carries the output cap for this dialect.</summary>
    public string MaxTokensField => Dialect switch
    {
        LlmDialect.OpenAIResponses => "max_output_tokens",
        LlmDialect.OpenAIChat when Body.ContainsKey("max_completion_tokens") || !Body.ContainsKey("max_tokens") => "max_completion_tokens",
        _ => "max_tokens",
    };

    /// <summary>The client's output cap, or null when it sent none.</summary>
    public int? MaxTokens
    {
        get
        {
            if (Dialect == LlmDialect.OpenAIChat)
            {
                return ReadInt("max_completion_tokens") ?? ReadInt("max_tokens");
            }

            return ReadInt(MaxTokensField);
        }
    }

    /// <summary>
    /// How many completions the request asks for: OpenAI chat's <c>n</c> (validated by the parser to 1–128), 1 for
    /// every other dialect. The output cap applies to each of them, so the worst case is <c>n × max_tokens</c>.
    /// </summary>
    public int Choices => Dialect == LlmDialect.OpenAIChat && ReadInt("n") is { } n and > 1 ? n : 1;

    /// <summary>Sets the output cap in the dialect's own field and marks the body modified.</summary>
    public void SetMaxTokens(int value)
    {
        Body[MaxTokensField] = value;
        MarkModified();
    }

    /// <summary>Records that <see cref="Body"/> no longer equals <see cref="OriginalBytes"/>.</summary>
    public void MarkModified() => IsModified = true;

    /// <summary>The bytes to forward: the original when untouched (plus any <see cref="AddStringField"/>), else the serialized body.</summary>
    public ReadOnlyMemory<byte> GetBytesToSend() =>
        IsModified ? JsonSerializer.SerializeToUtf8Bytes(Body, LlmRequestParser.WriteOptions) : _spliced ?? OriginalBytes;

    /// <summary>
    /// Adds a top-level string field the body does not have. An untouched body is not re-serialized: the field is
    /// spliced in front of the client's first field and every other byte is forwarded as sent (a gateway-owned field
    /// such as the team's <c>prompt_cache_key</c> must not cost a serialization of the whole prompt).
    /// </summary>
    public void AddStringField(string name, string value)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(value);
        if (Body.ContainsKey(name))
        {
            throw new InvalidOperationException($"The request already has a '{name}' field.");
        }

        Body[name] = value;
        if (IsModified)
        {
            return;
        }

        var original = _spliced ?? OriginalBytes;
        var span = original.Span;
        var open = span.IndexOfAnyExcept(" \t\r\n"u8);
        if (open < 0 || span[open] != (byte)'{')
        {
            MarkModified();
            return;
        }

        var rest = span[(open + 1)..];
        var next = rest.IndexOfAnyExcept(" \t\r\n"u8);
        var empty = next >= 0 && rest[next] == (byte)'}';
        var field = new System.Buffers.ArrayBufferWriter<byte>(name.Length + value.Length + 16);
        using (var writer = new Utf8JsonWriter(field))
        {
            writer.WriteStartObject();
            writer.WriteString(name, value);
            writer.WriteEndObject();
        }

        var property = field.WrittenSpan[1..^1]; // "name":"value" without the braces
        var spliced = new byte[open + 1 + property.Length + (empty ? 0 : 1) + rest.Length];
        span[..(open + 1)].CopyTo(spliced);
        property.CopyTo(spliced.AsSpan(open + 1));
        var at = open + 1 + property.Length;
        if (!empty)
        {
            spliced[at++] = (byte)',';
        }

        rest.CopyTo(spliced.AsSpan(at));
        _spliced = spliced;
    }

    private byte[]? _spliced;

    /// <summary>
    /// The parsed document of a body no stage has changed (requests from <see cref="LlmRequestParser.TryParseBorrowed"/>):
    /// readers that only need the original values use it without building the tree.
    /// </summary>
    internal bool TryGetOriginalRoot(out JsonElement root)
    {
        if (_document is null || IsModified)
        {
            root = default;
            return false;
        }

        root = _document.RootElement;
        return true;
    }

    /// <summary>
    /// True while the tree and the parsed document hold the same values: no stage changed the body and no field was
    /// added to it (<see cref="AddStringField"/> writes to the tree only). Checks over the document then hold for the tree.
    /// </summary>
    internal bool TryGetUntouchedRoot(out JsonElement root)
    {
        if (_spliced is not null)
        {
            root = default;
            return false;
        }

        return TryGetOriginalRoot(out root);
    }

    /// <summary>Returns the pooled parse metadata of a request from <see cref="LlmRequestParser.TryParseBorrowed"/>; a no-op otherwise.</summary>
    public void Dispose() => _document?.Dispose();

    private int? ReadInt(string name) => Body[name] is JsonValue v && v.TryGetValue<int>(out var i) ? i : null;
}
