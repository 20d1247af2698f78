using TokenGateway.Core.Dialects;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Time.Testing;

namespace TokenGateway.Simulator.Tests;

public sealed class CachingTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
    private SimulatorHost _sim = null!;

    public async Task InitializeAsync() => _sim = await SimulatorHost.StartAsync(time: _time);

    public async Task DisposeAsync() => await _sim.DisposeAsync();

    private static JsonObject Chat(string system, string user) => new()
    {
        ["model"] = "gpt-4o",
        ["messages"] = new JsonArray(
            new JsonObject { ["role"] = "system", ["content"] = system },
            new JsonObject { ["role"] = "user", ["content"] = user }),
    };

    [Fact]
    public async Task OpenAI_RepeatedLongPrefix_ReportsCachedTokensIn128Increments()
    {
        var system = Tokens.LongText(1500, nameof(OpenAI_RepeatedLongPrefix_ReportsCachedTokensIn128Increments));

        var first = await _sim.PostJsonAsync("/v1/chat/completions", Chat(system, "question one"));
        var second = await _sim.PostJsonAsync("/v1/chat/completions", Chat(system, "a different question two"));

        Assert.Equal(0, (int)first["usage"]!["prompt_tokens_details"]!["cached_tokens"]!);
        var cached = (int)second["usage"]!["prompt_tokens_details"]!["cached_tokens"]!;
        var prompt = (int)second["usage"]!["prompt_tokens"]!;
        Assert.True(cached >= 1024, $"cached {cached}");
        Assert.Equal(0, (cached - 1024) % 128);
        // The shared prefix is the system message plus the user message's 3 overhead tokens and role.
        var shared = 3 + Tokens.O200k("system") + Tokens.O200k(system) + 3 + Tokens.O200k("user");
        Assert.Equal(1024 + ((shared - 1024) / 128 * 128), cached);
        Assert.True(cached <= prompt);
    }

    [Fact]
    public async Task OpenAI_ShortPrompt_NeverCaches()
    {
        await _sim.PostJsonAsync("/v1/chat/completions", Chat("short", "q"));
        var again = await _sim.PostJsonAsync("/v1/chat/completions", Chat("short", "q"));

        Assert.Equal(0, (int)again["usage"]!["prompt_tokens_details"]!["cached_tokens"]!);
    }

    [Fact]
    public async Task OpenAI_AfterTtl_PrefixIsColdAgain()
    {
        var system = Tokens.LongText(1200, nameof(OpenAI_AfterTtl_PrefixIsColdAgain));
        await _sim.PostJsonAsync("/v1/chat/completions", Chat(system, "q"));
        _time.Advance(TimeSpan.FromMinutes(6));

        var later = await _sim.PostJsonAsync("/v1/chat/completions", Chat(system, "q"));

        Assert.Equal(0, (int)later["usage"]!["prompt_tokens_details"]!["cached_tokens"]!);
    }

    [Fact]
    public async Task OpenAI_DifferentModel_DoesNotShareCache()
    {
        var system = Tokens.LongText(1200, nameof(OpenAI_DifferentModel_DoesNotShareCache));
        await _sim.PostJsonAsync("/v1/chat/completions", Chat(system, "q"));
        var other = Chat(system, "q");
        other["model"] = "gpt-4o-mini";

        var result = await _sim.PostJsonAsync("/v1/chat/completions", other);

        Assert.Equal(0, (int)result["usage"]!["prompt_tokens_details"]!["cached_tokens"]!);
    }

    [Fact]
    public async Task OpenAI_PromptCacheKey_PartitionsTheCache()
    {
        var system = Tokens.LongText(1200, nameof(OpenAI_PromptCacheKey_PartitionsTheCache));
        JsonObject Keyed(string? key)
        {
            var body = Chat(system, "q");
            if (key is not null)
            {
                body["prompt_cache_key"] = key;
            }

            return body;
        }

        await _sim.PostJsonAsync("/v1/chat/completions", Keyed("team-a"));
        var sameKey = await _sim.PostJsonAsync("/v1/chat/completions", Keyed("team-a"));
        var otherKey = await _sim.PostJsonAsync("/v1/chat/completions", Keyed("team-b"));
        var noKey = await _sim.PostJsonAsync("/v1/chat/completions", Keyed(null));

        Assert.True((int)sameKey["usage"]!["prompt_tokens_details"]!["cached_tokens"]! >= 1024);
        Assert.Equal(0, (int)otherKey["usage"]!["prompt_tokens_details"]!["cached_tokens"]!);
        Assert.Equal(0, (int)noKey["usage"]!["prompt_tokens_details"]!["cached_tokens"]!);
    }

    [Fact]
    public async Task OpenAI_Responses_ReportsCachedInputTokens()
    {
        var instructions = Tokens.LongText(1300, nameof(OpenAI_Responses_ReportsCachedInputTokens));
        var body = new JsonObject { ["model"] = "gpt-4.1", ["instructions"] = instructions, ["input"] = "q" };
        await _sim.PostJsonAsync("/v1/responses", body);

        var again = await _sim.PostJsonAsync("/v1/responses", body);

        Assert.True((int)again["usage"]!["input_tokens_details"]!["cached_tokens"]! >= 1024);
    }

    private static JsonObject Claude(string system, string user, string? ttl = null)
    {
        var control = new JsonObject { ["type"] = "ephemeral" };
        if (ttl is not null)
        {
            control["ttl"] = ttl;
        }

        return new JsonObject
        {
            ["model"] = "claude-sonnet-4-5",
            ["max_tokens"] = 64,
            ["system"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = system, ["cache_control"] = control }),
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = user }),
        };
    }

    [Fact]
    public async Task Anthropic_CacheControl_WritesThenReadsPrefix()
    {
        var system = Tokens.LongText(1200, nameof(Anthropic_CacheControl_WritesThenReadsPrefix));
        var systemTokens = Tokens.Claude(system);
        var total = Tokens.Prompt(LlmDialect.AnthropicMessages, Claude(system, "first question"), "claude");
        var userTokens = total - systemTokens;

        var first = (await _sim.PostJsonAsync("/v1/messages", Claude(system, "first question")))["usage"]!;
        var second = (await _sim.PostJsonAsync("/v1/messages", Claude(system, "first question")))["usage"]!;

        Assert.Equal(systemTokens, (int)first["cache_creation_input_tokens"]!);
        Assert.Equal(0, (int)first["cache_read_input_tokens"]!);
        Assert.Equal(userTokens, (int)first["input_tokens"]!);
        Assert.Equal(systemTokens, (int)first["cache_creation"]!["ephemeral_5m_input_tokens"]!);
        Assert.Equal(0, (int)second["cache_creation_input_tokens"]!);
        Assert.Equal(systemTokens, (int)second["cache_read_input_tokens"]!);
        Assert.Equal(userTokens, (int)second["input_tokens"]!);
    }

    [Fact]
    public async Task Anthropic_OneHourTtl_ReportsOneHourWrite()
    {
        var system = Tokens.LongText(1200, nameof(Anthropic_OneHourTtl_ReportsOneHourWrite));

        var usage = (await _sim.PostJsonAsync("/v1/messages", Claude(system, "q", "1h")))["usage"]!;

        Assert.Equal(Tokens.Claude(system), (int)usage["cache_creation"]!["ephemeral_1h_input_tokens"]!);
        Assert.Equal(0, (int)usage["cache_creation"]!["ephemeral_5m_input_tokens"]!);
    }

    [Fact]
    public async Task Anthropic_BelowMinimum_DoesNotCache()
    {
        var first = (await _sim.PostJsonAsync("/v1/messages", Claude("short system", "q")))["usage"]!;

        Assert.Equal(0, (int)first["cache_creation_input_tokens"]!);
        Assert.Equal(Tokens.Prompt(LlmDialect.AnthropicMessages, Claude("short system", "q"), "claude"), (int)first["input_tokens"]!);
    }

    [Fact]
    public async Task Anthropic_GrowingConversationWithRollingBreakpoint_ReadsEarlierPrefix()
    {
        var system = Tokens.LongText(1100, nameof(Anthropic_GrowingConversationWithRollingBreakpoint_ReadsEarlierPrefix));
        var turn1 = Claude(system, "first");
        var u1 = (await _sim.PostJsonAsync("/v1/messages", turn1))["usage"]!;

        var turn2 = Claude(system, "first");
        turn2["messages"]!.AsArray().Add(new JsonObject { ["role"] = "assistant", ["content"] = "answer" });
        turn2["messages"]!.AsArray().Add(new JsonObject
        {
            ["role"] = "user",
            ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = "second", ["cache_control"] = new JsonObject { ["type"] = "ephemeral" } }),
        });
        var u2 = (await _sim.PostJsonAsync("/v1/messages", turn2))["usage"]!;

        var systemTokens = Tokens.Claude(system);
        Assert.Equal(systemTokens, (int)u1["cache_creation_input_tokens"]!);
        Assert.Equal(systemTokens, (int)u2["cache_read_input_tokens"]!);
        // Everything after the system prompt up to the new breakpoint is written; the parts always add up to the
        // gateway's own count of the request.
        var rest = 3 + Tokens.Claude("first") + 3 + Tokens.Claude("answer") + 3 + Tokens.Claude("second");
        Assert.Equal(rest, (int)u2["cache_creation_input_tokens"]!);
        var total = Tokens.Prompt(LlmDialect.AnthropicMessages, turn2, "claude");
        Assert.Equal(total, (int)u2["input_tokens"]! + (int)u2["cache_read_input_tokens"]! + (int)u2["cache_creation_input_tokens"]!);
    }

    [Fact]
    public async Task Anthropic_TooManyBreakpoints_Returns400()
    {
        var body = Claude("s", "q");
        var blocks = new JsonArray();
        for (var i = 0; i < 5; i++)
        {
            blocks.Add(new JsonObject { ["type"] = "text", ["text"] = $"block {i}", ["cache_control"] = new JsonObject { ["type"] = "ephemeral" } });
        }

        body["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = blocks });

        using var response = await _sim.PostAsync("/v1/messages", body);

        Assert.Equal(400, (int)response.StatusCode);
    }
}
