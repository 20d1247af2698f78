using System.Buffers;
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using TokenGateway.Simulator.Endpoints;

namespace TokenGateway.Simulator;

/// <summary>Writes a buffered JSON body with Content-Length, applying the body faults (reset, stall, malformed) of non-streamed answers.</summary>
internal static class JsonResponse
{
    public static Utf8JsonWriter NewWriter(ArrayBufferWriter<byte> buffer) => new(buffer, SimulatorJson.WriterOptions);

    /// <summary>How long a reset waits after flushing, so the peer reads the bytes before the RST discards its receive buffer.</summary>
    public static readonly TimeSpan ResetGrace = TimeSpan.FromMilliseconds(100);

    /// <summary>Aborts the connection (a TCP reset) after <see cref="ResetGrace"/>.</summary>
    public static async Task AbortAfterGraceAsync(SimRequest request)
    {
        await Task.Delay(ResetGrace, request.Aborted);
        request.Http.Abort();
    }

    public static async Task WriteAsync(SimRequest request, ArrayBufferWriter<byte> buffer)
    {
        var response = request.Http.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        response.Headers[request.IsAnthropic ? "request-id" : "x-request-id"] = Ids.New("req_", 24);
        var body = buffer.WrittenMemory;
        var faults = request.Faults;
        var half = body.Length / 2;
        if (faults.MalformedSse)
        {
            // A body cut in half: valid HTTP framing, invalid JSON.
            response.ContentLength = half;
            await response.Body.WriteAsync(body[..half], request.Aborted);
            return;
        }

        response.ContentLength = body.Length;
        if (faults.Reset || faults.Stall)
        {
            await response.Body.WriteAsync(body[..half], request.Aborted);
            await response.Body.FlushAsync(request.Aborted);
            if (faults.Reset)
            {
                await AbortAfterGraceAsync(request);
                return;
            }

            await Task.Delay(Timeout.InfiniteTimeSpan, request.Aborted);
        }

        await response.Body.WriteAsync(body, request.Aborted);
    }
}
