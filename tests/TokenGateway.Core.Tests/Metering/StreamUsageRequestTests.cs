using System.Text;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;

namespace TokenGateway.Core.Tests.Metering;

public sealed class StreamUsageRequestTests
{
    [Theory]
    [InlineData("""{"model":"m","stream":true,"messages":[]}""", true)]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":false},"messages":[]}""", true)]
    [InlineData("""{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}""", false)]
    public void ForceIncludeUsage_StreamedChat_SetsFlagAndReportsWhetherToSuppress(string body, bool suppress)
    {
        var request = Parse(LlmDialect.OpenAIChat, body);

        var result = StreamUsageRequest.ForceIncludeUsage(request);

        Assert.Equal(suppress, result);
        Assert.Equal(suppress, request.IsModified);
        Assert.Contains("\"stream_options\":{\"include_usage\":true}", Encoding.UTF8.GetString(request.GetBytesToSend().Span), StringComparison.Ordinal);
    }

    [Fact]
    public void ForceIncludeUsage_NotStreamed_Untouched()
    {
        var request = Parse(LlmDialect.OpenAIChat, """{"model":"m","messages":[]}""");

        Assert.False(StreamUsageRequest.ForceIncludeUsage(request));
        Assert.False(request.IsModified);
    }

    [Fact]
    public void ForceIncludeUsage_AnthropicStream_Untouched()
    {
        var request = Parse(LlmDialect.AnthropicMessages, """{"model":"m","stream":true,"max_tokens":5,"messages":[]}""");

        Assert.False(StreamUsageRequest.ForceIncludeUsage(request));
        Assert.False(request.IsModified);
    }

    private static LlmRequest Parse(LlmDialect dialect, string json)
    {
        Assert.True(LlmRequestParser.TryParse(dialect, Encoding.UTF8.GetBytes(json), out var request, out _));
        return request!;
    }
}
