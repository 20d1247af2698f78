using System.Text;
using TokenGateway.Core.Caching;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Tests.Caching;

public sealed class PromptCacheScopeTests
{
    [Fact]
    public void Apply_LongPrompt_SetsTheTeamScopeOnce()
    {
        using var request = Parse(LlmDialect.OpenAIChat, """{"model":"gpt-4o","messages":[{"role":"user","content":"x"}]}""");

        Assert.True(PromptCacheScope.Apply(request, "team-1", 2000));
        var key = request.Body["prompt_cache_key"]!.GetValue<string>();
        Assert.Equal(PromptCacheScope.For("team-1"), key);
        Assert.False(PromptCacheScope.Apply(request, "team-1", 2000)); // idempotent
        Assert.NotEqual(key, PromptCacheScope.For("team-2"));
    }

    [Fact]
    public void Apply_ClientKeyAndUser_AreKeptAfterTheScope()
    {
        using var request = Parse(LlmDialect.OpenAIResponses, """{"model":"gpt-4o","input":"x","prompt_cache_key":"app","user":"bob"}""");

        Assert.True(PromptCacheScope.Apply(request, "team-1", 5000));

        var scope = PromptCacheScope.For("team-1");
        Assert.Equal(scope + ":app", request.Body["prompt_cache_key"]!.GetValue<string>());
        Assert.Equal(scope + ":bob", request.Body["user"]!.GetValue<string>());
    }

    [Fact]
    public void Apply_ClientCopiesAnotherTeamsScope_IsNamespacedUnderItsOwn()
    {
        var foreign = PromptCacheScope.For("team-2");
        using var request = Parse(LlmDialect.OpenAIChat, "{\"model\":\"gpt-4o\",\"messages\":[],\"prompt_cache_key\":\"" + foreign + "\"}");

        Assert.True(PromptCacheScope.Apply(request, "team-1", 5000));

        Assert.Equal(PromptCacheScope.For("team-1") + ":" + foreign, request.Body["prompt_cache_key"]!.GetValue<string>());
    }

    [Theory]
    [InlineData(LlmDialect.OpenAIChat, 1023)]
    [InlineData(LlmDialect.AnthropicMessages, 5000)]
    public void Apply_ShortPromptOrAnthropic_LeavesTheBodyAlone(LlmDialect dialect, int tokens)
    {
        using var request = Parse(dialect, """{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"user":"bob"}""");

        Assert.False(PromptCacheScope.Apply(request, "team-1", tokens));
        Assert.False(request.Body.ContainsKey("prompt_cache_key"));
        Assert.Equal("bob", request.Body["user"]!.GetValue<string>());
    }

    private static LlmRequest Parse(LlmDialect dialect, string json)
    {
        Assert.True(LlmRequestParser.TryParse(dialect, Encoding.UTF8.GetBytes(json), out var request, out var error), error.Message);
        return request!;
    }
}
