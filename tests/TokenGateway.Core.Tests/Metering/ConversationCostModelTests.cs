using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;
using TokenGateway.Core.Models;
using TokenGateway.Core.Tokenization;

namespace TokenGateway.Core.Tests.Metering;

/// <summary>
/// Dollars before/after optimization and with the provider's prompt cache, computed by hand: the counter here makes one
/// token per character of every text (<c>content</c>, <c>text</c>, <c>description</c>), so prefix sizes are exact.
/// </summary>
public sealed class ConversationCostModelTests
{
    // Catalogue prices (src/TokenGateway/catalog.json), USD per million tokens.
    private static readonly ModelCard Gpt4o = new()
    {
        Name = "gpt-4o", Provider = "openai", Prices = new ModelPrices { Input = 2.5m, Output = 10m, CachedInput = 1.25m },
    };

    private static readonly ModelCard Sonnet = new()
    {
        Name = "claude-sonnet-4-5", Provider = "anthropic", Tokenizer = "claude", CacheMinTokens = 1024,
        Prices = new ModelPrices { Input = 3m, Output = 15m, CachedInput = 0.3m, CacheWrite5m = 3.75m },
    };

    private static readonly ModelCard Haiku35 = new()
    {
        Name = "claude-3-5-haiku", Provider = "anthropic", Tokenizer = "claude", CacheMinTokens = 2048,
        Prices = new ModelPrices { Input = 0.8m, Output = 4m, CachedInput = 0.08m, CacheWrite5m = 1m },
    };

    [Fact]
    public void Add_OpenAIConversation_SecondTurnReadsThePrefixIn128TokenSteps()
    {
        var model = NewModel();
        var turn1 = Chat(Msg("system", 1000, 's'), Msg("user", 100, 'a'));
        var turn2 = Chat(Msg("system", 1000, 's'), Msg("user", 100, 'a'), Msg("assistant", 50, 'b'), Msg("user", 60, 'c'));

        var first = Add(model, LlmDialect.OpenAIChat, turn1, turn1, Gpt4o);
        var second = Add(model, LlmDialect.OpenAIChat, turn2, turn2, Gpt4o);

        // Turn 1: 1,100 tokens × $2.50/M; nothing cached yet.
        Assert.Equal(0.00275m, first.BeforeUsd);
        Assert.Equal(0.00275m, first.BeforeCachedUsd);
        Assert.Equal((1, 1), (first.Conversation, first.Turn));
        // Turn 2: 1,210 tokens; the 1,100-token prefix is cached as 8 × 128 = 1,024 tokens at $1.25/M:
        // 186 × 2.50 + 1,024 × 1.25 = 465 + 1,280 = 1,745 micro-dollars.
        Assert.Equal(0.003025m, second.BeforeUsd);
        Assert.Equal(0.001745m, second.BeforeCachedUsd);
        Assert.Equal(new PromptCacheUse(1024, 0, 0, 1100), second.CacheBefore);
        Assert.Equal((1, 2), (second.Conversation, second.Turn));
        Assert.Null(second.PrefixBrokenAt);
    }

    [Fact]
    public void Add_OptimizationRewritesAnEarlierTurn_PrefixBreaksAndCachedCostRises()
    {
        var model = NewModel();
        var turn1 = Chat(Msg("system", 1000, 's'), Msg("user", 100, 'a'));
        var turn2 = Chat(Msg("system", 1000, 's'), Msg("user", 100, 'a'), Msg("assistant", 50, 'b'), Msg("user", 60, 'c'));
        var turn2Optimized = Chat(Msg("system", 1000, 's'), Msg("user", 80, 'a'), Msg("assistant", 50, 'b'), Msg("user", 60, 'c'));

        Add(model, LlmDialect.OpenAIChat, turn1, turn1, Gpt4o);
        var second = Add(model, LlmDialect.OpenAIChat, turn2, turn2Optimized, Gpt4o);

        // 1,190 tokens sent: 1,190 × 2.50 = 2,975 micro-dollars without a cache — less than before (3,025) …
        Assert.Equal(0.002975m, second.AfterUsd);
        // … but only the 1,000-token system message is still shared, under the 1,024 minimum: nothing is cached,
        // so with the provider's cache the optimized turn costs more than the client's (1,745).
        Assert.Equal(new PromptCacheUse(0, 0, 0, 1000), second.CacheAfter);
        Assert.Equal(0.002975m, second.AfterCachedUsd);
        Assert.Equal(0.001745m, second.BeforeCachedUsd);
        Assert.Equal("message 1", second.PrefixBrokenAt);
    }

    [Fact]
    public void Add_AnthropicBreakpoint_WritesAt125PercentThenReadsAtTenPercent()
    {
        var model = NewModel();
        var turn1 = Messages(System(1200, breakpoint: null), Msg("user", 100, 'q'));
        var turn1Hinted = Messages(System(1200, breakpoint: "5m"), Msg("user", 100, 'q'));
        var turn2 = Messages(System(1200, breakpoint: null), Msg("user", 100, 'q'), Msg("assistant", 40, 'r'), Msg("user", 60, 'u'));
        var turn2Hinted = Messages(System(1200, breakpoint: "5m"), Msg("user", 100, 'q'), Msg("assistant", 40, 'r'), Msg("user", 60, 'u'));

        var first = Add(model, LlmDialect.AnthropicMessages, turn1, turn1Hinted, Sonnet);
        var second = Add(model, LlmDialect.AnthropicMessages, turn2, turn2Hinted, Sonnet);

        // Without breakpoints Anthropic caches nothing: 1,300 × $3/M and 1,400 × $3/M.
        Assert.Equal(0.0039m, first.BeforeCachedUsd);
        Assert.Equal(0.0042m, second.BeforeCachedUsd);
        Assert.Equal(new PromptCacheUse(0, 0, 0, 1300), second.CacheBefore);
        // Turn 1 with the breakpoint: 100 × 3 + 1,200 written × 3.75 = 300 + 4,500 = 4,800 micro-dollars.
        Assert.Equal(new PromptCacheUse(0, 1200, 0, 0), first.CacheAfter);
        Assert.Equal(0.0048m, first.AfterCachedUsd);
        // Turn 2: 200 × 3 + 1,200 read × 0.30 = 600 + 360 = 960 micro-dollars.
        Assert.Equal(new PromptCacheUse(1200, 0, 0, 1300), second.CacheAfter);
        Assert.Equal(0.00096m, second.AfterCachedUsd);
        // A cache_control marker is not a change of the prompt.
        Assert.Null(second.PrefixBrokenAt);
    }

    [Fact]
    public void Add_AnthropicOneHourBreakpoint_WritesAtTwiceTheInputPrice()
    {
        var model = NewModel();
        var turn = Messages(System(1200, breakpoint: "1h"), Msg("user", 100, 'q'));

        var first = Add(model, LlmDialect.AnthropicMessages, turn, turn, Sonnet);

        // 100 × 3 + 1,200 × 6 (2 × $3, the card has no 1-hour price) = 300 + 7,200 micro-dollars.
        Assert.Equal(new PromptCacheUse(0, 1200, 1200, 0), first.CacheAfter);
        Assert.Equal(0.0075m, first.AfterCachedUsd);
    }

    [Fact]
    public void Add_AnthropicPrefixBelowTheModelMinimum_IsNeitherWrittenNorRead()
    {
        var model = NewModel();
        var turn1 = Messages(System(1200, breakpoint: "5m"), Msg("user", 100, 'q'));
        var turn2 = Messages(System(1200, breakpoint: "5m"), Msg("user", 100, 'q'), Msg("assistant", 40, 'r'), Msg("user", 60, 'u'));

        var first = Add(model, LlmDialect.AnthropicMessages, turn1, turn1, Haiku35);
        var second = Add(model, LlmDialect.AnthropicMessages, turn2, turn2, Haiku35);

        // Haiku 3.5 caches from 2,048 tokens: the 1,200-token system prompt is billed as plain input every turn.
        Assert.Equal(new PromptCacheUse(0, 0, 0, 0), first.CacheAfter);
        Assert.Equal(0.00104m, first.AfterCachedUsd); // 1,300 × 0.80
        Assert.Equal(0.00112m, second.AfterCachedUsd); // 1,400 × 0.80
    }

    [Fact]
    public void Add_AnthropicEntryMoreThan20BlocksBeforeTheBreakpoint_IsMissed()
    {
        var model = NewModel();
        var history = new List<JsonObject> { Msg("user", 10, 'q') };
        for (var i = 0; i < 12; i++)
        {
            history.Add(Msg("assistant", 10, 'a'));
            history.Add(Msg("user", 10, 'u'));
        }

        // Turn 1 caches system (1,200) at block 1; turn 2 only marks its newest message, 26 blocks later.
        var turn1 = Messages(System(1200, breakpoint: "5m"), Msg("user", 10, 'q'));
        var turn2 = Messages(System(1200, breakpoint: null), [.. history.Take(history.Count - 1), WithBreakpoint(history[^1])]);

        Add(model, LlmDialect.AnthropicMessages, turn1, turn1, Sonnet);
        var second = Add(model, LlmDialect.AnthropicMessages, turn2, turn2, Sonnet);

        // No hit: the whole 1,450-token prefix up to the new breakpoint is written again.
        Assert.Equal(0, second.CacheAfter.ReadTokens);
        Assert.Equal(1450, second.CacheAfter.WriteTokens);
    }

    [Fact]
    public void Add_InterleavedConversations_AreLinkedByMessagePrefix()
    {
        var model = NewModel();
        var a1 = Chat(Msg("user", 10, 'a'));
        var b1 = Chat(Msg("user", 10, 'b'));
        var a2 = Chat(Msg("user", 10, 'a'), Msg("assistant", 5, 'x'), Msg("user", 5, 'y'));
        var b2 = Chat(Msg("user", 10, 'b'), Msg("assistant", 5, 'x'), Msg("user", 5, 'y'));

        var results = new[] { a1, b1, a2, b2 }.Select(r => Add(model, LlmDialect.OpenAIChat, r, r, Gpt4o)).ToList();

        Assert.Equal([(1, 1), (2, 1), (1, 2), (2, 2)], results.Select(r => (r.Conversation, r.Turn)));
        Assert.All(results, r => Assert.Equal(0, r.CacheBefore.ReadTokens)); // all under 1,024 tokens
    }

    [Fact]
    public void Add_UnpricedModel_ReportsNoDollars()
    {
        var model = NewModel();
        var unpriced = new ModelCard { Name = "local-llama", Provider = "openai" };
        var turn = Chat(Msg("user", 10, 'a'));

        var cost = Add(model, LlmDialect.OpenAIChat, turn, turn, unpriced);

        Assert.False(cost.Priced);
        Assert.Null(cost.BeforeUsd);
        Assert.Null(cost.AfterCachedUsd);
    }

    [Fact]
    public void Add_RealCounter_PrefixTokensNeverExceedTheRequest()
    {
        var tokenizers = TiktokenTokenizerRegistry.Shared;
        var model = new ConversationCostModel(new ChatRequestTokenCounter(tokenizers), new CostCalculator(new PricingOptions()));
        var counter = new ChatRequestTokenCounter(tokenizers);
        var longText = string.Join(' ', Enumerable.Repeat("The quick brown fox jumps over the lazy dog.", 200));
        var turn1 = Chat(new JsonObject { ["role"] = "system", ["content"] = longText }, new JsonObject { ["role"] = "user", ["content"] = "Hi" });
        var turn2 = Chat(new JsonObject { ["role"] = "system", ["content"] = longText }, new JsonObject { ["role"] = "user", ["content"] = "Hi" },
            new JsonObject { ["role"] = "assistant", ["content"] = "Hello" }, new JsonObject { ["role"] = "user", ["content"] = "Bye" });
        int Count(JsonObject b) => counter.CountInputTokens(LlmDialect.OpenAIChat, b, Gpt4o);

        model.Add(LlmDialect.OpenAIChat, turn1, turn1, Gpt4o, Count(turn1), Count(turn1));
        var second = model.Add(LlmDialect.OpenAIChat, turn2, turn2, Gpt4o, Count(turn2), Count(turn2));

        Assert.InRange(second.CacheBefore.SharedPrefixTokens, Count(turn1) - 3, Count(turn1));
        Assert.Equal(second.CacheBefore.SharedPrefixTokens / 128 * 128, second.CacheBefore.ReadTokens);
        Assert.True(second.BeforeCachedUsd < second.BeforeUsd);
    }

    private static ConversationCostModel NewModel() => new(new CharCounter(), new CostCalculator(new PricingOptions()));

    private static RequestCostEstimate Add(ConversationCostModel model, LlmDialect dialect, JsonObject original, JsonObject optimized, ModelCard card) =>
        model.Add(dialect, original, optimized, card, CharCounter.Count(original), CharCounter.Count(optimized));

    private static JsonObject Msg(string role, int length, char c) => new() { ["role"] = role, ["content"] = new string(c, length) };

    private static JsonObject WithBreakpoint(JsonObject message) => new()
    {
        ["role"] = message["role"]!.DeepClone(),
        ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = message["content"]!.DeepClone(), ["cache_control"] = new JsonObject { ["type"] = "ephemeral" } }),
    };

    private static JsonArray System(int length, string? breakpoint)
    {
        var block = new JsonObject { ["type"] = "text", ["text"] = new string('s', length) };
        if (breakpoint is not null)
        {
            block["cache_control"] = breakpoint == "1h" ? new JsonObject { ["type"] = "ephemeral", ["ttl"] = "1h" } : new JsonObject { ["type"] = "ephemeral" };
        }

        return new JsonArray(block);
    }

    private static JsonObject Chat(params JsonObject[] messages) => new() { ["model"] = "m", ["messages"] = new JsonArray([.. messages]) };

    private static JsonObject Messages(JsonArray system, params JsonObject[] messages) =>
        new() { ["model"] = "m", ["max_tokens"] = 100, ["system"] = system, ["messages"] = new JsonArray([.. messages]) };

    /// <summary>One token per character of every <c>content</c>/<c>text</c>/<c>description</c> string.</summary>
    private sealed class CharCounter : IRequestTokenCounter
    {
        public int CountInputTokens(LlmRequest request, ModelCard model) => Count(request.Body);

        public int CountInputTokens(LlmRequest request, ModelCard model, out TokenAnatomy anatomy)
        {
            var count = Count(request.Body);
            anatomy = new TokenAnatomy(0, 0, 0, 0, count); // this fake does not split; the cost model never asks
            return count;
        }

        public static int Count(JsonNode? node, string? name = null) => node switch
        {
            JsonObject o => o.Sum(p => Count(p.Value, p.Key)),
            JsonArray a => a.Sum(n => Count(n, name)),
            JsonValue v when name is "content" or "text" or "description" && v.TryGetValue<string>(out var s) => s.Length,
            _ => 0,
        };
    }
}
