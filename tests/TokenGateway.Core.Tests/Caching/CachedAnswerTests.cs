using System.Buffers;
using System.Text;
using TokenGateway.Core.Caching;
using TokenGateway.Core.Dialects;
using TokenGateway.Core.Metering;

namespace TokenGateway.Core.Tests.Caching;

public sealed class CachedAnswerTests
{
    [Fact]
    public void Serialize_RoundTrip_KeepsEveryField()
    {
        var stored = DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_123);
        var sut = new CachedAnswer(LlmDialect.AnthropicMessages, "claude-sonnet-4-5", Encoding.UTF8.GetBytes("""{"id":"msg_1"}"""),
            new TokenUsage(100, 20, 30, 5, 1, 7), stored);
        var buffer = new ArrayBufferWriter<byte>();

        sut.Serialize(buffer);
        var back = CachedAnswer.Deserialize(new ReadOnlySequence<byte>(buffer.WrittenMemory))!;

        Assert.Equal(LlmDialect.AnthropicMessages, back.Dialect);
        Assert.Equal("claude-sonnet-4-5", back.Model);
        Assert.Equal("""{"id":"msg_1"}""", Encoding.UTF8.GetString(back.Body.Span));
        Assert.Equal(new TokenUsage(100, 20, 30, 5, 1, 7), back.Usage);
        Assert.Equal(stored, back.StoredAt);
    }

    [Fact]
    public void Deserialize_OtherVersionOrTruncated_ReturnsNull()
    {
        var buffer = new ArrayBufferWriter<byte>();
        new CachedAnswer(LlmDialect.OpenAIChat, "gpt-4o", new byte[] { (byte)'{', (byte)'}' }, default, DateTimeOffset.UnixEpoch).Serialize(buffer);
        var bytes = buffer.WrittenSpan.ToArray();

        var otherVersion = (byte[])bytes.Clone();
        otherVersion[0] = 99;

        Assert.Null(CachedAnswer.Deserialize(new ReadOnlySequence<byte>(otherVersion)));
        Assert.Null(CachedAnswer.Deserialize(new ReadOnlySequence<byte>(bytes.AsMemory(0, bytes.Length - 1))));
    }
}
