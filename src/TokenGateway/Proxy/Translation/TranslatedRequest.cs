using System.Text.Json;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Proxy.Translation;

/// <summary>
/// The body actually sent upstream for a translated request (the client's body, optimized, then translated) and what
/// the answer's translation needs from the request.
/// </summary>
internal sealed class TranslatedRequest(JsonObject body, bool clientIncludeUsage)
{
    /// <summary>The body in the upstream's dialect.</summary>
    public JsonObject Body { get; } = body;

    /// <summary>True when the client's stream expects usage (see <c>RequestTranslation.ClientIncludeUsage</c>).</summary>
    public bool ClientIncludeUsage { get; } = clientIncludeUsage;

    /// <summary>
    /// Serializes <see cref="Body"/> for <paramref name="model"/>: once before forwarding, once more only when a fallback
    /// renames the model.
    /// </summary>
    public ReadOnlyMemory<byte> Serialize(string model)
    {
        Body["model"] = model;
        return JsonSerializer.SerializeToUtf8Bytes(Body, LlmRequestParser.WriteOptions);
    }
}
