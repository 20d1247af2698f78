using System.Net;
using System.Text;
using TokenGateway.IntegrationTests.Infrastructure;

namespace TokenGateway.IntegrationTests;

/// <summary>
/// ADR 0004: what W3C trace context reaches the provider. Spans not recorded (the default): a request without a
/// <c>traceparent</c> creates no activity and sends none upstream; a request with one forwards the caller's trace id
/// under the gateway's own span id. Spans recorded (<c>Telemetry:RecordTraces</c>): the provider always gets the
/// gateway's context, in the caller's trace when there is one.
/// </summary>
/// <remarks>
/// Serial: an <see cref="System.Diagnostics.ActivityListener"/> that another test adds is process-wide and would create
/// activities (and a traceparent) in every gateway of the process while it lives.
/// </remarks>
[Collection(nameof(SerialCollection))]
public sealed class TraceContextTests
{
    private const string ChatBody = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"trace probe\"}]}";
    private const string CallerTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    private const string CallerSpanId = "00f067aa0ba902b7";
    private const string CallerTraceparent = "00-" + CallerTraceId + "-" + CallerSpanId + "-01";
    private const string RecordTracesVariable = "Telemetry__RecordTraces";

    [Fact]
    public async Task NotRecording_WithoutTraceparent_SendsNoneUpstream()
    {
        var upstream = await SendAsync(recordTraces: false, traceparent: null);

        Assert.Null(upstream);
    }

    [Fact]
    public async Task NotRecording_WithTraceparent_CallersTraceReachesProviderUnderGatewaySpan()
    {
        var upstream = await SendAsync(recordTraces: false, CallerTraceparent);

        var (traceId, spanId, flags) = Parse(upstream);
        Assert.Equal(CallerTraceId, traceId);
        Assert.NotEqual(CallerSpanId, spanId); // the gateway's outgoing call, not a copy of the caller's header
        Assert.Equal("00", flags); // nothing of the gateway's part of the trace is recorded
    }

    [Fact]
    public async Task Recording_WithoutTraceparent_GatewaysOwnTraceReachesProvider()
    {
        var upstream = await SendAsync(recordTraces: true, traceparent: null);

        var (traceId, spanId, flags) = Parse(upstream);
        Assert.NotEqual(new string('0', 32), traceId);
        Assert.NotEqual(CallerTraceId, traceId);
        Assert.NotEqual(new string('0', 16), spanId);
        Assert.Equal("01", flags);
    }

    [Fact]
    public async Task Recording_WithTraceparent_CallersTraceReachesProviderUnderGatewaySpan()
    {
        var upstream = await SendAsync(recordTraces: true, CallerTraceparent);

        var (traceId, spanId, flags) = Parse(upstream);
        Assert.Equal(CallerTraceId, traceId);
        Assert.NotEqual(CallerSpanId, spanId);
        Assert.Equal("01", flags);
    }

    /// <summary>One chat through a gateway; the <c>traceparent</c> the simulator received (null when none).</summary>
    private static async Task<string?> SendAsync(bool recordTraces, string? traceparent)
    {
        // The tracer provider is composed while the builder is created, before GatewayServer adds its settings: the
        // switch goes in as an environment variable (this class runs alone, see the remarks).
        Environment.SetEnvironmentVariable(RecordTracesVariable, recordTraces ? "true" : "false");
        GatewayServer server;
        try
        {
            server = await GatewayServer.StartAsync();
        }
        finally
        {
            Environment.SetEnvironmentVariable(RecordTracesVariable, null);
        }

        await using var _ = server;
        // The test's own HttpClient must not add (or replace) a traceparent: with RecordTraces on, the gateway's tracer
        // provider listens to System.Net.Http in this whole process, the test's client included.
        using var http = new HttpClient(new SocketsHttpHandler { ActivityHeadersPropagator = null }) { BaseAddress = new Uri(server.Address) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", server.VirtualKey);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/chat/completions")
        {
            Content = new StringContent(ChatBody, Encoding.UTF8, "application/json"),
        };
        if (traceparent is not null)
        {
            request.Headers.TryAddWithoutValidation("traceparent", traceparent);
        }

        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var requestId = response.Headers.GetValues("x-tokengateway-request-id").Single();
        var received = server.Simulator.Recorder.Snapshot().Single(r => r.GetHeader("x-tokengateway-request-id") == requestId);
        return received.GetHeader("traceparent");
    }

    private static (string TraceId, string SpanId, string Flags) Parse(string? traceparent)
    {
        Assert.NotNull(traceparent);
        var parts = traceparent!.Split('-');
        Assert.Equal(4, parts.Length);
        Assert.Equal("00", parts[0]);
        Assert.Equal(32, parts[1].Length);
        Assert.Equal(16, parts[2].Length);
        return (parts[1], parts[2], parts[3]);
    }
}
