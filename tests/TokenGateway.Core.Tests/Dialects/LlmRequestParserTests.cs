using System.Text;
using System.Text.Json.Nodes;
using TokenGateway.Core.Dialects;

namespace TokenGateway.Core.Tests.Dialects;

public sealed class LlmRequestParserTests
{
    private const string Chat = """{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"Line one\nline \"two\" é"}],"max_tokens":50}""";

    [Fact]
    public void TryParseBorrowed_ValidBody_SameTreeAndBytesAsCopyingParse()
    {
        var bytes = Encoding.UTF8.GetBytes(Chat);

        Assert.True(LlmRequestParser.TryParse(LlmDialect.OpenAIChat, bytes, out var copied, out _));
        Assert.True(LlmRequestParser.TryParseBorrowed(LlmDialect.OpenAIChat, bytes, out var borrowed, out _));
        using (borrowed)
        {
            Assert.True(JsonNode.DeepEquals(copied!.Body, borrowed!.Body));
            Assert.Equal("gpt-4o", borrowed.Model);
            Assert.True(borrowed.Stream);
            Assert.Equal(50, borrowed.MaxTokens);
            Assert.True(borrowed.GetBytesToSend().Span.SequenceEqual(bytes)); // untouched: forwarded byte-identical
            Assert.Equal("Line one\nline \"two\" é", (string)borrowed.Body["messages"]![0]!["content"]!);
        }
    }

    [Fact]
    public void TryParseBorrowed_Modified_SerializesTheRewrittenTree()
    {
        var bytes = Encoding.UTF8.GetBytes(Chat);
        Assert.True(LlmRequestParser.TryParseBorrowed(LlmDialect.OpenAIChat, bytes, out var request, out _));
        using (request)
        {
            request!.SetMaxTokens(10);

            var sent = JsonNode.Parse(request.GetBytesToSend().Span)!;
            Assert.Equal(10, (int)sent["max_tokens"]!);
            Assert.Equal("Line one\nline \"two\" é", (string)sent["messages"]![0]!["content"]!);
        }
    }

    [Theory]
    [InlineData("{\"model\":", "not valid JSON")]
    [InlineData("[1,2]", "must be a JSON object")]
    [InlineData("{\"messages\":[]}", "'model' is required")]
    [InlineData("{\"model\":\"m\",\"messages\":{}}", "'messages' is required")]
    public void TryParseBorrowed_BadBody_SameErrorAsCopyingParse(string body, string expected)
    {
        var bytes = Encoding.UTF8.GetBytes(body);

        Assert.False(LlmRequestParser.TryParseBorrowed(LlmDialect.OpenAIChat, bytes, out var request, out var error));
        Assert.False(LlmRequestParser.TryParse(LlmDialect.OpenAIChat, bytes, out _, out var copyError));

        Assert.Null(request);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Equal(copyError, error);
    }

    [Fact]
    public void TryParseBorrowed_TooDeep_Rejected()
    {
        var deep = "{\"model\":\"m\",\"messages\":[" + string.Concat(Enumerable.Repeat("[", LlmRequestParser.MaxDepth + 5)) + string.Concat(Enumerable.Repeat("]", LlmRequestParser.MaxDepth + 5)) + "]}";

        Assert.False(LlmRequestParser.TryParseBorrowed(LlmDialect.OpenAIChat, Encoding.UTF8.GetBytes(deep), out _, out var error));
        Assert.Contains("not valid JSON", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"model":"gpt-4o","model":"gpt-4o-mini","messages":[]}""")]
    [InlineData("""{"model":"gpt-4o","messages":[{"role":"user","content":"a","content":"b"}]}""")]
    [InlineData("""{"model":"gpt-4o","messages":[],"metadata":{"k":{"x":1,"x":2}}}""")]
    public void TryParse_DuplicateProperty_FalseWithClearError(string body)
    {
        var bytes = Encoding.UTF8.GetBytes(body);

        // Both parse paths refuse it up front, never a later exception when a stage touches the duplicated object.
        Assert.False(LlmRequestParser.TryParseBorrowed(LlmDialect.OpenAIChat, bytes, out _, out var borrowedError));
        Assert.False(LlmRequestParser.TryParse(LlmDialect.OpenAIChat, bytes, out _, out var copiedError));
        Assert.Contains("Duplicate", borrowedError.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("Duplicate", copiedError.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("129")]
    [InlineData("2.5")]
    [InlineData("\"3\"")]
    public void TryParse_ChatWithInvalidN_FalseNamingN(string n)
    {
        var bytes = Encoding.UTF8.GetBytes($$"""{"model":"gpt-4o","n":{{n}},"messages":[]}""");

        Assert.False(LlmRequestParser.TryParseBorrowed(LlmDialect.OpenAIChat, bytes, out _, out var error));
        Assert.Equal("n", error.Param);
    }

    [Theory]
    [InlineData("""{"model":"gpt-4o","messages":[]}""", 1)]
    [InlineData("""{"model":"gpt-4o","n":null,"messages":[]}""", 1)]
    [InlineData("""{"model":"gpt-4o","n":4,"messages":[]}""", 4)]
    public void Choices_Chat_ReadsN(string body, int expected)
    {
        Assert.True(LlmRequestParser.TryParseBorrowed(LlmDialect.OpenAIChat, Encoding.UTF8.GetBytes(body), out var request, out _));
        using (request)
        {
            Assert.Equal(expected, request!.Choices);
        }
    }
}
