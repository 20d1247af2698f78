using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Metering;

/// <summary>Prompt-cache tokens the provider would bill for one request (as in its <c>usage</c>).</summary>
/// <param name="ReadTokens">Input tokens read from the cache (OpenAI <c>cached_tokens</c>, Anthropic <c>cache_read_input_tokens</c>).</param>
/// <param name="WriteTokens">Input tokens written to the cache (Anthropic <c>cache_creation_input_tokens</c>; 0 on OpenAI).</param>
/// <param name="Write1hTokens">The part of <paramref name="WriteTokens"/> written with the 1-hour TTL.</param>
/// <param name="SharedPrefixTokens">Tokens of the prompt identical to the conversation's earlier request (cached or not).</param>
public readonly record struct PromptCacheUse(int ReadTokens, int WriteTokens, int Write1hTokens, int SharedPrefixTokens);

/// <summary>The input cost of one request before and after optimization, without and with the provider's prompt cache.</summary>
public sealed record RequestCostEstimate
{
    /// <summary>The card the request was priced with.</summary>
    public required ModelCard Model { get; init; }

    /// <summary>False when the card has no input or output price: every cost below is then null (never invented).</summary>
    public bool Priced { get; init; }

    /// <summary>Conversation number (1-based, in order of first appearance) the request belongs to.</summary>
    public int Conversation { get; init; }

    /// <summary>Position of the request in its conversation (1 = the first request seen).</summary>
    public int Turn { get; init; }

    /// <summary>Tokens as received / as sent.</summary>
    public int TokensBefore { get; init; }

    /// <summary>Tokens as sent after optimization.</summary>
    public int TokensAfter { get; init; }

    /// <summary>All input at the uncached input price, as the client sent it.</summary>
    public decimal? BeforeUsd { get; init; }

    /// <summary>All input at the uncached input price, as optimized.</summary>
    public decimal? AfterUsd { get; init; }

    /// <summary>The client's request with the provider's prompt cache along the conversation (what it pays today).</summary>
    public decimal? BeforeCachedUsd { get; init; }

    /// <summary>The optimized request with the provider's prompt cache along the conversation.</summary>
    public decimal? AfterCachedUsd { get; init; }

    /// <summary>Cache use of the request as the client sent it.</summary>
    public PromptCacheUse CacheBefore { get; init; }

    /// <summary>Cache use of the optimized request.</summary>
    public PromptCacheUse CacheAfter { get; init; }

    /// <summary>
    /// Set when the optimized request no longer starts with what the optimized previous turn sent although the client's
    /// request did (a stage rewrote an earlier part of the prompt): where the prefix first differs —
    /// <c>tools</c>, <c>system</c>, <c>instructions</c> or <c>message N</c> (0-based).
    /// </summary>
    public string? PrefixBrokenAt { get; init; }
}

/// <summary>
/// Prices a stream of requests before and after optimization, and models the provider's prompt cache along the
/// conversations in it. A request continues the conversation of the latest earlier request (same dialect and model)
/// whose messages are a prefix of its own; requests are assumed to follow each other within the cache lifetime.
/// </summary>
/// <remarks>
/// <para>OpenAI and other OpenAI-shaped providers cache automatically: a prompt of at least the card's
/// <see cref="ModelCard.CacheMinTokens"/> (1,024) that starts with a prompt the conversation sent before reads the
/// shared prefix from the cache, rounded down to 128-token increments; writes are free.</para>
/// <para>Anthropic caches only at <c>cache_control</c> breakpoints (or the last block for a top-level
/// <c>cache_control</c>): a breakpoint whose prefix reaches the card's minimum writes an entry (1.25× input, 2× for
/// <c>ttl: "1h"</c>); a later request reads the longest entry that its prompt still starts with and that lies within
/// 20 blocks before one of its breakpoints (0.1× input); the tokens between that entry and its last valid breakpoint
/// are written again.</para>
/// <para>Only input is priced: the input holds requests, not answers, and optimization does not change output.</para>
/// </remarks>
public sealed class ConversationCostModel
{
    /// <summary>OpenAI caches hits in increments of this many tokens.</summary>
    public const int OpenAICacheIncrement = 128;

    /// <summary>An Anthropic breakpoint finds entries at most this many blocks before it.</summary>
    public const int AnthropicLookbackBlocks = 20;

    private readonly IRequestTokenCounter _counter;
    private readonly CostCalculator _costs;
    private readonly List<Turn> _turns = [];
    private readonly Dictionary<(LlmDialect, string, long), int> _latestByMessages = [];
    private readonly List<List<int>> _conversations = [];

    /// <summary>Creates a model that counts prefixes with <paramref name="counter"/> and prices with <paramref name="costs"/>.</summary>
    public ConversationCostModel(IRequestTokenCounter counter, CostCalculator costs)
    {
        ArgumentNullException.ThrowIfNull(counter);
        ArgumentNullException.ThrowIfNull(costs);
        _counter = counter;
        _costs = costs;
    }

    /// <summary>
    /// Adds the next request: <paramref name="original"/> as the client sent it (not mutated) and
    /// <paramref name="optimized"/> as it would be sent, with their token counts from the pipeline.
    /// </summary>
    public RequestCostEstimate Add(LlmDialect dialect, JsonObject original, JsonObject optimized, ModelCard card, int tokensBefore, int tokensAfter)
    {
        ArgumentNullException.ThrowIfNull(original);
        ArgumentNullException.ThrowIfNull(optimized);
        ArgumentNullException.ThrowIfNull(card);

        var before = new PromptLayout(dialect, original, card, tokensBefore, _counter);
        var after = new PromptLayout(dialect, optimized, card, tokensAfter, _counter);
        var turn = new Turn(before, after);
        var predecessor = FindPredecessor(dialect, card.Name, before);
        List<int> conversation;
        if (predecessor is { } p)
        {
            conversation = _conversations[_turns[p].Conversation];
            turn.Conversation = _turns[p].Conversation;
        }
        else
        {
            conversation = [];
            turn.Conversation = _conversations.Count;
            _conversations.Add(conversation);
        }

        var anthropic = dialect.IsAnthropic();
        var cacheBefore = Simulate(anthropic, card, before, conversation.Select(i => _turns[i].Before));
        var cacheAfter = Simulate(anthropic, card, after, conversation.Select(i => _turns[i].After));
        string? brokenAt = null;
        if (predecessor is { } q)
        {
            var previous = _turns[q];
            var keptBefore = PromptLayout.CommonSegments(before, previous.Before) == previous.Before.Segments.Length;
            var common = PromptLayout.CommonSegments(after, previous.After);
            if (keptBefore && common < previous.After.Segments.Length)
            {
                brokenAt = after.Describe(common);
            }
        }

        var index = _turns.Count;
        _turns.Add(turn);
        conversation.Add(index);
        _latestByMessages[(dialect, card.Name, before.MessagesHash(before.MessageCount))] = index;

        var priced = card.Prices.IsPriced && _costs.TryGetEffectivePrices(card, out _);
        EffectivePrices prices = default;
        if (priced)
        {
            _costs.TryGetEffectivePrices(card, out prices);
        }

        return new RequestCostEstimate
        {
            Model = card,
            Priced = priced,
            Conversation = turn.Conversation + 1,
            Turn = conversation.Count,
            TokensBefore = tokensBefore,
            TokensAfter = tokensAfter,
            BeforeUsd = priced ? CostCalculator.Calculate(prices, new TokenUsage(tokensBefore, 0)) : null,
            AfterUsd = priced ? CostCalculator.Calculate(prices, new TokenUsage(tokensAfter, 0)) : null,
            BeforeCachedUsd = priced ? CostCalculator.Calculate(prices, Usage(tokensBefore, cacheBefore)) : null,
            AfterCachedUsd = priced ? CostCalculator.Calculate(prices, Usage(tokensAfter, cacheAfter)) : null,
            CacheBefore = cacheBefore,
            CacheAfter = cacheAfter,
            PrefixBrokenAt = brokenAt,
        };
    }

    /// <summary>
    /// The request that produced the latest assistant turn of <paramref name="body"/>: a copy whose messages stop before
    /// its last assistant message; null when it has none (the request opens its conversation). Chat and Anthropic
    /// messages only.
    /// </summary>
    public static JsonObject? PreviousTurn(LlmDialect dialect, JsonObject body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (dialect is not (LlmDialect.OpenAIChat or LlmDialect.AnthropicMessages) || body["messages"] is not JsonArray messages)
        {
            return null;
        }

        var lastAssistant = -1;
        for (var i = messages.Count - 1; i >= 0 && lastAssistant < 0; i--)
        {
            if (messages[i] is JsonObject m && m["role"] is JsonValue role && role.ToString() == "assistant")
            {
                lastAssistant = i;
            }
        }

        if (lastAssistant <= 0)
        {
            return null;
        }

        var previous = new JsonObject();
        foreach (var (name, value) in body)
        {
            previous[name] = name == "messages"
                ? new JsonArray([.. messages.Take(lastAssistant).Select(m => m?.DeepClone())])
                : value?.DeepClone();
        }

        return previous;
    }

    private static TokenUsage Usage(int input, PromptCacheUse cache) =>
        new(input, 0, CachedInputTokens: cache.ReadTokens, CacheWriteTokens: cache.WriteTokens, CacheWrite1hTokens: cache.Write1hTokens);

    /// <summary>The latest earlier request (same dialect and model) whose messages are a prefix of <paramref name="layout"/>'s.</summary>
    private int? FindPredecessor(LlmDialect dialect, string model, PromptLayout layout)
    {
        for (var k = layout.MessageCount; k >= 1; k--)
        {
            if (_latestByMessages.TryGetValue((dialect, model, layout.MessagesHash(k)), out var index) &&
                _turns[index].Before is var earlier && earlier.MessageCount == k && PromptLayout.SameMessages(earlier, layout, k))
            {
                return index;
            }
        }

        return null;
    }

    private static PromptCacheUse Simulate(bool anthropic, ModelCard card, PromptLayout layout, IEnumerable<PromptLayout> earlier)
    {
        var minimum = Math.Max(1, card.CacheMinTokens);
        var shared = 0;
        if (!anthropic)
        {
            var cacheable = 0;
            foreach (var e in earlier)
            {
                var common = Math.Min(layout.TokensUpTo(PromptLayout.CommonSegments(layout, e)), e.TotalTokens);
                shared = Math.Max(shared, common);
                if (e.TotalTokens >= minimum)
                {
                    cacheable = Math.Max(cacheable, common); // a prompt below the minimum was never cached
                }
            }

            var read = cacheable >= minimum ? cacheable / OpenAICacheIncrement * OpenAICacheIncrement : 0;
            return new PromptCacheUse(read, 0, 0, shared);
        }

        var breakpoints = layout.Breakpoints;
        var readAt = 0;
        foreach (var e in earlier)
        {
            var common = PromptLayout.CommonSegments(layout, e);
            shared = Math.Max(shared, layout.TokensUpTo(common));
            foreach (var entry in e.CacheEntries)
            {
                if (entry <= common && entry > readAt && breakpoints.Any(b => entry <= b.Position && entry > b.Position - AnthropicLookbackBlocks))
                {
                    readAt = entry;
                }
            }
        }

        var readTokens = readAt == 0 ? 0 : layout.TokensUpTo(readAt);
        var lastValid = 0;
        var last1h = 0;
        foreach (var b in breakpoints)
        {
            if (layout.TokensUpTo(b.Position) >= minimum)
            {
                layout.CacheEntries.Add(b.Position);
                lastValid = Math.Max(lastValid, b.Position);
                if (b.OneHour)
                {
                    last1h = Math.Max(last1h, b.Position);
                }
            }
        }

        var write = lastValid > readAt ? layout.TokensUpTo(lastValid) - readTokens : 0;
        var write1h = last1h > readAt ? Math.Min(write, layout.TokensUpTo(last1h) - readTokens) : 0;
        return new PromptCacheUse(readTokens, write, write1h, shared);
    }

    private sealed class Turn(PromptLayout before, PromptLayout after)
    {
        public PromptLayout Before { get; } = before;

        public PromptLayout After { get; } = after;

        public int Conversation { get; set; }
    }
}
