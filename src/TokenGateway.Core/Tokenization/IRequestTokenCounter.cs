using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;

namespace TokenGateway.Core.Tokenization;

/// <summary>Counts a request's prompt tokens the way the provider bills them (message overhead, names, tools).</summary>
public interface IRequestTokenCounter
{
    /// <summary>Pre-flight input token count of <paramref name="request"/> for <paramref name="model"/>.</summary>
    int CountInputTokens(LlmRequest request, ModelCard model);
}
