using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Simulator.Prompts;

/// <summary>
/// Whole-prompt token totals, computed with the gateway's own <see cref="ChatRequestTokenCounter"/> so that the usage
/// the simulator bills equals the gateway's pre-flight count of the bytes it forwarded, token for token.
/// </summary>
internal static class PromptTotals
{
    private static readonly ChatRequestTokenCounter _counter = new(TiktokenTokenizerRegistry.Shared);
    private static readonly ConcurrentDictionary<string, ModelCard> _cards = new(StringComparer.Ordinal);

    public static int Count(LlmDialect dialect, JsonObject body, string model, string encoding) =>
        _counter.CountInputTokens(dialect, body, _cards.GetOrAdd(model, static (m, e) => new ModelCard
        {
            Name = m,
            Provider = "simulator",
            Tokenizer = e,
        }, encoding));
}
