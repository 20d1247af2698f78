using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;

namespace TokenGateway.Core.Tokenization;

/// <summary>Counts a request's prompt tokens the way the provider bills them (message overhead, names, tools).</summary>
public interface IRequestTokenCounter
{
    /// <summary>Pre-flight input token count of <paramref name="request"/> for <paramref name="model"/>.</summary>
    int CountInputTokens(LlmRequest request, ModelCard model);

    /// <summary>
    /// Pre-flight input token count of <paramref name="request"/> for <paramref name="model"/>, and the same count split
    /// by part of the prompt, in the same walk (<paramref name="anatomy"/> sums to the returned count).
    /// </summary>
    int CountInputTokens(LlmRequest request, ModelCard model, out TokenAnatomy anatomy);
}
