using System.Text.Json.Nodes;
using TokenGateway.Core.Caching;

namespace TokenGateway.Core.Tests.Caching;

public sealed class ResponseCacheKeyTests
{
    private const string Body = """{"model":"gpt-4o","temperature":0,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}}]}""";

    [Fact]
    public void Compute_ReorderedTopLevelFieldsAndWhitespace_SameKey()
    {
        var reordered = """ { "messages" : [{"role":"user","content":"hi"}], "tools":[{"type":"function","function":{"name":"a"}}], "temperature": 0, "model": "gpt-4o" } """;

        Assert.Equal(Key(Body), Key(reordered));
    }

    [Theory]
    [InlineData("stream", "true")]
    [InlineData("stream_options", """{"include_usage":true}""")]
    [InlineData("user", "\"alice\"")]
    [InlineData("metadata", """{"trace":"1"}""")]
    [InlineData("safety_identifier", "\"s\"")]
    [InlineData("prompt_cache_key", "\"k\"")]
    [InlineData("service_tier", "\"flex\"")]
    public void Compute_ExcludedField_DoesNotChangeTheKey(string field, string value)
    {
        var body = JsonNode.Parse(Body)!.AsObject();
        body[field] = JsonNode.Parse(value);

        Assert.Equal(Key(Body), ResponseCacheKey.Compute("team-1", "/v1/chat/completions", "gpt-4o", body));
    }

    [Theory]
    [InlineData("""{"model":"gpt-4o","temperature":0.5,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}}]}""")]
    [InlineData("""{"model":"gpt-4o","temperature":0,"messages":[{"role":"user","content":"hi!"}],"tools":[{"type":"function","function":{"name":"a"}}]}""")]
    [InlineData("""{"model":"gpt-4o","temperature":0,"messages":[{"content":"hi","role":"user"}],"tools":[{"type":"function","function":{"name":"a"}}]}""")]
    [InlineData("""{"model":"gpt-4o","temperature":0,"messages":[{"role":"user","content":"hi"}]}""")]
    [InlineData("""{"model":"gpt-4o","temperature":0,"store":false,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}}]}""")]
    public void Compute_AnswerChangingDifference_ChangesTheKey(string other)
    {
        Assert.NotEqual(Key(Body), Key(other));
    }

    [Fact]
    public void Compute_TeamRouteAndModel_AreEachPartOfTheKey()
    {
        var body = JsonNode.Parse(Body)!.AsObject();
        var key = ResponseCacheKey.Compute("team-1", "/v1/chat/completions", "gpt-4o", body);

        Assert.NotEqual(key, ResponseCacheKey.Compute("team-2", "/v1/chat/completions", "gpt-4o", body));
        Assert.NotEqual(key, ResponseCacheKey.Compute("team-1", "/v1/responses", "gpt-4o", body));
        Assert.NotEqual(key, ResponseCacheKey.Compute("team-1", "/v1/chat/completions", "gpt-4o-mini", body));
        Assert.StartsWith("tg:rc:v1:team-1:", key, StringComparison.Ordinal);
        Assert.Equal("tg:rc:v1:team-1:".Length + 64, key.Length);
    }

    [Fact]
    public void Compute_ModelFieldIsReplacedByTheServedModel()
    {
        var alias = JsonNode.Parse(Body)!.AsObject();
        alias["model"] = "gpt-4o-latest";

        Assert.Equal(Key(Body), ResponseCacheKey.Compute("team-1", "/v1/chat/completions", "gpt-4o", alias));
    }

    [Fact]
    public void Compute_UnsafeTeamId_IsHashedInTheReadablePrefix()
    {
        var key = ResponseCacheKey.Compute("team with spaces:and colons", "/v1/chat/completions", "gpt-4o", JsonNode.Parse(Body)!.AsObject());

        Assert.Matches("^tg:rc:v1:[0-9a-f]{16}:[0-9a-f]{64}$", key);
    }

    private static string Key(string body) => ResponseCacheKey.Compute("team-1", "/v1/chat/completions", "gpt-4o", JsonNode.Parse(body)!.AsObject());
}
