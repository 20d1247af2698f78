using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Tests.Dialects;

public sealed class LlmRequestAddFieldTests
{
    [Fact]
    public void AddStringField_UntouchedBody_SplicesTheFieldAndKeepsEveryOtherByte()
    {
        const string body = " {\"model\": \"gpt-4o\",  \"messages\": [ {\"role\":\"user\",\"content\":\"x \\u00e9\"} ] }";
        using var request = Parse(body);

        request.AddStringField("prompt_cache_key", "tg-0123");

        Assert.False(request.IsModified);
        Assert.Equal(" {\"prompt_cache_key\":\"tg-0123\",\"model\": \"gpt-4o\",  \"messages\": [ {\"role\":\"user\",\"content\":\"x \\u00e9\"} ] }",
            Encoding.UTF8.GetString(request.GetBytesToSend().Span));
        Assert.Equal("tg-0123", request.Body["prompt_cache_key"]!.GetValue<string>());
    }

    [Fact]
    public void AddStringField_ModifiedBody_IsSerializedWithTheField()
    {
        using var request = Parse("{\"model\":\"gpt-4o\",\"messages\":[]}");
        request.SetMaxTokens(5);

        request.AddStringField("prompt_cache_key", "k");

        var sent = JsonNode.Parse(request.GetBytesToSend().Span)!;
        Assert.Equal("k", sent["prompt_cache_key"]!.GetValue<string>());
        Assert.Equal(5, sent["max_completion_tokens"]!.GetValue<int>());
    }

    [Fact]
    public void AddStringField_ExistingField_Throws()
    {
        using var request = Parse("{\"model\":\"gpt-4o\",\"messages\":[],\"user\":\"u\"}");

        Assert.Throws<InvalidOperationException>(() => request.AddStringField("user", "v"));
    }

    private static LlmRequest Parse(string json)
    {
        Assert.True(LlmRequestParser.TryParse(LlmDialect.OpenAIChat, Encoding.UTF8.GetBytes(json), out var request, out var error), error.Message);
        return request!;
    }
}
