using System.Text.RegularExpressions;
using TokenGateway.Proxy;

namespace TokenGateway.IntegrationTests;

/// <summary>Unit tests of the proxy's pooled buffers and request ids (no server needed).</summary>
public sealed partial class ProxyBuffersTests
{
    [Fact]
    public void PooledBufferWriter_GrowsPastInitialCapacity_KeepsEveryByte()
    {
        using var writer = new PooledBufferWriter(256);
        var expected = new byte[70_000];
        new Random(7).NextBytes(expected);

        for (var offset = 0; offset < expected.Length; offset += 1000)
        {
            var chunk = expected.AsSpan(offset, Math.Min(1000, expected.Length - offset));
            chunk.CopyTo(writer.GetSpan(chunk.Length));
            writer.Advance(chunk.Length);
        }

        Assert.Equal(expected.Length, writer.WrittenCount);
        Assert.True(writer.WrittenSpan.SequenceEqual(expected));
        writer.ResetWrittenCount();
        Assert.Equal(0, writer.WrittenCount);
    }

    [Fact]
    public void PooledBufferWriter_AdvancePastEndOrUseAfterDispose_Throws()
    {
        var writer = new PooledBufferWriter(256);
        var free = writer.GetMemory().Length;
        Assert.Throws<InvalidOperationException>(() => writer.Advance(free + 1));

        writer.Dispose();
        Assert.Throws<ObjectDisposedException>(() => writer.GetSpan(1));
        writer.Dispose(); // idempotent
    }

    [Fact]
    public void PooledBody_Dispose_IsIdempotentAndBlocksFurtherUse()
    {
        var body = new PooledBody(10);
        Assert.Equal(10, body.Memory.Length);

        body.Dispose();
        body.Dispose();

        Assert.Throws<ObjectDisposedException>(() => body.Memory);
    }

    [Fact]
    public void RequestIds_New_UniqueHexTimeOrdered()
    {
        var ids = Enumerable.Range(0, 1000).Select(_ => RequestIds.New()).ToList();

        Assert.All(ids, id => Assert.Matches(IdPattern(), id));
        Assert.Equal(ids.Count, ids.Distinct(StringComparer.Ordinal).Count());
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Thread.Sleep(2);
        var later = RequestIds.New();
        var millis = Convert.ToInt64(later[4..16], 16);
        Assert.InRange(millis, before, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
    }

    [GeneratedRegex("^req_[0-9a-f]{32}$")]
    private static partial Regex IdPattern();
}
