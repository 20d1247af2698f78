using System.Buffers;
using System.Text;
using TokenGateway.Core.Streaming;

namespace TokenGateway.Core.Tests.Streaming;

public sealed class SseEventFramerTests
{
    private sealed class Recorder(Func<string, bool>? forward = null) : ISseEventHandler
    {
        public List<(string Name, string Data, int Lines, string Raw)> Events { get; } = [];

        public bool OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output)
        {
            var data = Encoding.UTF8.GetString(sseEvent.Data);
            Events.Add((Encoding.UTF8.GetString(sseEvent.Name), data, sseEvent.DataLines, Encoding.UTF8.GetString(sseEvent.Raw)));
            return forward?.Invoke(data) ?? true;
        }
    }

    private static (string Output, Recorder Events) Run(string sse, int chunk, Func<string, bool>? forward = null)
    {
        using var sut = new SseEventFramer();
        var recorder = new Recorder(forward);
        var output = new ArrayBufferWriter<byte>();
        var bytes = Encoding.UTF8.GetBytes(sse);
        for (var i = 0; i < bytes.Length; i += chunk)
        {
            sut.Process(bytes.AsSpan(i, Math.Min(chunk, bytes.Length - i)), output, recorder);
        }

        sut.Complete(output, recorder);
        return (Encoding.UTF8.GetString(output.WrittenSpan), recorder);
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\r")]
    public void Process_AnyLineEnding_FramesSameEventsAndForwardsBytesUnchanged(string eol)
    {
        var sse = $"event: a{eol}data: one{eol}{eol}: comment{eol}data: two{eol}{eol}";
        for (var chunk = 1; chunk <= sse.Length; chunk++)
        {
            var (output, recorder) = Run(sse, chunk);

            Assert.Equal(sse, output);
            Assert.Equal([("a", "one"), ("", "two")], recorder.Events.Select(e => (e.Name, e.Data)));
        }
    }

    [Fact]
    public void Process_CrOnlyEndings_EventsSplitAtEachBlankLine()
    {
        var (_, recorder) = Run("data: {\"a\":1}\r\rdata: [DONE]\r\r", chunk: 3);

        Assert.Equal(["{\"a\":1}", "[DONE]"], recorder.Events.Select(e => e.Data));
    }

    [Fact]
    public void Process_MultiLineData_JoinedWithLineFeed()
    {
        var (_, recorder) = Run("data: {\"a\":\r\ndata: 1}\r\ndata:x\r\n\r\n", chunk: 5);

        var e = Assert.Single(recorder.Events);
        Assert.Equal("{\"a\":\n1}\nx", e.Data);
        Assert.Equal(3, e.Lines);
    }

    [Fact]
    public void Process_WithheldEventEndingInSplitCrlf_LineFeedAlsoWithheld()
    {
        var sse = "data: keep\r\n\r\ndata: drop\r\n\r\ndata: keep2\r\n\r\n";
        var split = sse.IndexOf("drop", StringComparison.Ordinal) + "drop\r\n\r".Length;
        using var sut = new SseEventFramer();
        var recorder = new Recorder(d => d != "drop");
        var output = new ArrayBufferWriter<byte>();
        var bytes = Encoding.UTF8.GetBytes(sse);

        sut.Process(bytes.AsSpan(0, split), output, recorder);
        sut.Process(bytes.AsSpan(split), output, recorder);
        sut.Complete(output, recorder);

        Assert.Equal("data: keep\r\n\r\ndata: keep2\r\n\r\n", Encoding.UTF8.GetString(output.WrittenSpan));
    }

    [Fact]
    public void Process_KeepAliveBlankLines_ForwardedButNotEvents()
    {
        var (output, recorder) = Run("\n\n\ndata: x\n\n", chunk: 2);

        Assert.Equal("\n\n\ndata: x\n\n", output);
        Assert.Single(recorder.Events);
    }

    [Fact]
    public void Complete_TrailingEventWithoutBlankLine_HandedOutAndForwarded()
    {
        var (output, recorder) = Run("data: a\n\ndata: tail", chunk: 4);

        Assert.Equal("data: a\n\ndata: tail", output);
        Assert.Equal(["a", "tail"], recorder.Events.Select(e => e.Data));
    }

    /// <summary>A transform: writes its own line per event and withholds the upstream bytes.</summary>
    private sealed class Rewriter : ISseEventHandler
    {
        public List<string> Data { get; } = [];

        public bool OnEvent(in SseEvent sseEvent, IBufferWriter<byte> output)
        {
            Data.Add(Encoding.UTF8.GetString(sseEvent.Data));
            output.Write("<"u8);
            output.Write(sseEvent.Data);
            output.Write(">"u8);
            return false;
        }
    }

    [Theory]
    [InlineData("\n")]
    [InlineData("\r\n")]
    [InlineData("\r")]
    public void Process_WithoutPassThrough_OnlyTheHandlerWrites(string eol)
    {
        var sse = $"{eol}{eol}: ping{eol}{eol}event: a{eol}data: one{eol}{eol}{eol}data: two{eol}data: 2{eol}{eol}data: tail";
        var bytes = Encoding.UTF8.GetBytes(sse);
        for (var chunk = 1; chunk <= bytes.Length; chunk++)
        {
            using var sut = new SseEventFramer(passThrough: false);
            var handler = new Rewriter();
            var output = new ArrayBufferWriter<byte>();
            for (var i = 0; i < bytes.Length; i += chunk)
            {
                sut.Process(bytes.AsSpan(i, Math.Min(chunk, bytes.Length - i)), output, handler);
            }

            sut.Complete(output, handler);

            Assert.Equal("<><one><two\n2><tail>", Encoding.UTF8.GetString(output.WrittenSpan)); // "<>": the comment-only event
            Assert.Equal(4, sut.EventCount);
        }
    }

    [Fact]
    public void Process_WithoutPassThrough_OversizeEventDropped()
    {
        var big = Encoding.UTF8.GetBytes("data: " + new string('x', SseEventFramer.MaxEventBytes) + "\n\n");
        var after = "data: after\n\n"u8.ToArray();
        using var sut = new SseEventFramer(passThrough: false);
        var handler = new Rewriter();
        var output = new ArrayBufferWriter<byte>();

        sut.Process(big.AsSpan(0, 1024), output, handler); // held, then given up on when it outgrows the limit
        sut.Process(big.AsSpan(1024), output, handler);
        sut.Process(after, output, handler);
        sut.Complete(output, handler);

        Assert.Equal("<after>", Encoding.UTF8.GetString(output.WrittenSpan));
        Assert.Equal(["after"], handler.Data);
        Assert.Equal(2, sut.EventCount);
        Assert.Equal(0, sut.BufferedBytes);
    }
}
