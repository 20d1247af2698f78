using System.Buffers;
using System.IO.Pipelines;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using TokenGateway.Simulator.Endpoints;

namespace TokenGateway.Simulator;

/// <summary>
/// Writes server-sent events straight into Kestrel's pipe, flushing after each event, and injects the stream faults
/// (latency between events, reset, stall, malformed-sse) at <see cref="FaultAfterEvent"/>.
/// </summary>
internal sealed class SseWriter : IDisposable
{
    private static readonly byte[] _eventPrefix = "event: "u8.ToArray();
    private static readonly byte[] _dataPrefix = "data: "u8.ToArray();
    private static readonly byte[] _newLine = "\n"u8.ToArray();
    private static readonly byte[] _eventEnd = "\n\n"u8.ToArray();
    private static readonly byte[] _malformed =
        "data: {\"id\":\"broken\",\"choices\":[{\"delta\":{\"content\":\"unterminated\n\nthis line is not a server-sent event\n\n"u8.ToArray();

    private readonly SimRequest _request;
    private readonly PipeWriter _pipe;
    private readonly Utf8JsonWriter _json;
    private int _events;

    public SseWriter(SimRequest request)
    {
        _request = request;
        _pipe = request.Http.Response.BodyWriter;
        _json = new Utf8JsonWriter(_pipe, SimulatorJson.WriterOptions);
    }

    /// <summary>The 1-based event count after which reset, stall and malformed-sse strike.</summary>
    public int FaultAfterEvent { get; set; } = 1;

    public async ValueTask StartAsync()
    {
        var response = _request.Http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "text/event-stream; charset=utf-8";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        response.Headers[_request.IsAnthropic ? "request-id" : "x-request-id"] = Ids.New("req_", 24);
        await response.StartAsync(_request.Aborted);
    }

    /// <summary>Starts an event and returns the writer for its JSON data.</summary>
    public Utf8JsonWriter Begin(string? eventName)
    {
        if (eventName is not null)
        {
            _pipe.Write(_eventPrefix);
            WriteAscii(eventName);
            _pipe.Write(_newLine);
        }

        _pipe.Write(_dataPrefix);
        _json.Reset(_pipe);
        return _json;
    }

    /// <summary>Finishes the event begun by <see cref="Begin"/>, flushes it and applies faults and latency.</summary>
    public async ValueTask EndAsync()
    {
        _json.Flush();
        _pipe.Write(_eventEnd);
        await AfterEventAsync();
    }

    /// <summary>Writes a raw <c>data:</c> line event (e.g. <c>[DONE]</c>).</summary>
    public async ValueTask WriteDataAsync(string data)
    {
        _pipe.Write(_dataPrefix);
        WriteAscii(data);
        _pipe.Write(_eventEnd);
        await AfterEventAsync();
    }

    public void Dispose() => _json.Dispose();

    private async ValueTask AfterEventAsync()
    {
        _events++;
        var faults = _request.Faults;
        if (faults.ResetAfter is { } resetAfter && _events == resetAfter)
        {
            await _pipe.FlushAsync(_request.Aborted);
            await JsonResponse.AbortAfterGraceAsync(_request);
            throw new OperationCanceledException($"Connection reset by the simulator after {resetAfter} events (reset-after fault).");
        }

        if (faults.StallAfter is { } stallAfter && _events == stallAfter)
        {
            await _pipe.FlushAsync(_request.Aborted);
            await Task.Delay(Timeout.InfiniteTimeSpan, _request.Aborted);
        }

        if (_events == FaultAfterEvent)
        {
            if (faults.MalformedSse)
            {
                _pipe.Write(_malformed);
            }

            if (faults.Reset)
            {
                await _pipe.FlushAsync(_request.Aborted);
                await JsonResponse.AbortAfterGraceAsync(_request);
                throw new OperationCanceledException("Connection reset by the simulator (reset fault).");
            }

            if (faults.Stall)
            {
                await _pipe.FlushAsync(_request.Aborted);
                await Task.Delay(Timeout.InfiniteTimeSpan, _request.Aborted);
            }
        }

        var flush = await _pipe.FlushAsync(_request.Aborted);
        if (flush.IsCanceled || flush.IsCompleted)
        {
            throw new OperationCanceledException("The client went away.");
        }

        if (faults.Latency > TimeSpan.Zero)
        {
            await Task.Delay(faults.Latency, _request.Aborted);
        }
    }

    private void WriteAscii(string text)
    {
        var span = _pipe.GetSpan(Encoding.UTF8.GetMaxByteCount(text.Length));
        var written = Encoding.UTF8.GetBytes(text, span);
        _pipe.Advance(written);
    }
}
