using System.Text.Json.Nodes;

namespace TokenGateway.Core.Translation;

/// <summary>One part of a request that has no equivalent in the target dialect: where it is and why it is refused.</summary>
/// <param name="Path">The field, as the client wrote it (<c>logprobs</c>, <c>messages[3].content[0]</c>).</param>
/// <param name="Reason">Why it cannot be translated, in words the client can act on.</param>
public readonly record struct RefusedField(string Path, string Reason);

/// <summary>Knobs of request translation that the host decides (from the model card or the team's policy).</summary>
public sealed record TranslationOptions
{
    /// <summary>
    /// The <c>max_tokens</c> sent to Anthropic when an OpenAI request sets no output cap (Anthropic requires one).
    /// 4096 fits every current Claude model's output limit; a thinking budget is added on top of it.
    /// </summary>
    public int DefaultMaxTokens { get; init; } = 4096;

    /// <summary>
    /// The OpenAI field that carries Anthropic's <c>max_tokens</c>: <c>max_completion_tokens</c> (OpenAI and Azure,
    /// required by reasoning models) or <c>max_tokens</c> (OpenAI-compatible servers that only know the older name).
    /// </summary>
    public string OpenAIMaxTokensField { get; init; } = "max_completion_tokens";

    /// <summary>The defaults.</summary>
    public static TranslationOptions Default { get; } = new();
}

/// <summary>
/// The outcome of translating a request body: the body for the other dialect, or the fields that cannot be
/// translated (the host answers 400 <c>invalid_request</c> naming them).
/// </summary>
public sealed class RequestTranslation
{
    private RequestTranslation(JsonObject? body, IReadOnlyList<RefusedField> refused, bool stream, bool includeUsage)
    {
        Body = body;
        Refused = refused;
        Stream = stream;
        ClientIncludeUsage = includeUsage;
    }

    /// <summary>The translated body, or null when the request was refused.</summary>
    public JsonObject? Body { get; }

    /// <summary>The fields that made the request untranslatable; empty on success.</summary>
    public IReadOnlyList<RefusedField> Refused { get; }

    /// <summary>True when <see cref="Body"/> is usable.</summary>
    public bool Succeeded => Body is not null;

    /// <summary>True when the client asked for a stream.</summary>
    public bool Stream { get; }

    /// <summary>
    /// True when the client expects usage in its stream: always for Anthropic clients, and for OpenAI chat clients only
    /// when they set <c>stream_options.include_usage</c>. The stream translator takes it as is.
    /// </summary>
    public bool ClientIncludeUsage { get; }

    /// <summary>The name of the first refused field, for the error envelope's <c>param</c>.</summary>
    public string? Param => Refused.Count > 0 ? Refused[0].Path : null;

    /// <summary>A client-facing message naming every refused field and why.</summary>
    public string ErrorMessage => Refused.Count == 0
        ? string.Empty
        : "This request cannot be translated for a model of the other API: "
            + string.Join("; ", Refused.Select(r => $"'{r.Path}' {r.Reason}"))
            + ". Remove these fields or use a model of this API.";

    internal static RequestTranslation Success(JsonObject body, bool stream, bool includeUsage) => new(body, [], stream, includeUsage);

    internal static RequestTranslation Failure(IReadOnlyList<RefusedField> refused) => new(null, refused, false, false);
}
