using System.Diagnostics;

namespace TokenGateway.Telemetry;

/// <summary>
/// Trace propagation while no span is recorded (ADR 0004): the ASP.NET Core server activity is created only when the
/// request carries a W3C <c>traceparent</c> (the caller is tracing), as propagation data; the HttpClient activity under
/// it then sends the caller's trace id to the provider. A request without one creates no activity at all.
/// </summary>
/// <remarks>
/// Registered only when spans are not recorded; the OpenTelemetry tracer provider then listens to no source. The
/// listener is added in <see cref="StartingAsync"/>, which the host runs before any hosted service starts (Kestrel
/// included), so the first request already sees it.
/// </remarks>
internal sealed class IncomingTraceContext : IHostedLifecycleService, IDisposable
{
    /// <summary>The ActivitySource of ASP.NET Core's server activity (<c>Microsoft.AspNetCore.Hosting.HttpRequestIn</c>).</summary>
    public const string AspNetCoreSource = "Microsoft.AspNetCore";

    private readonly ActivityListener _listener = new()
    {
        ShouldListenTo = static source => source.Name == AspNetCoreSource,
        Sample = static (ref ActivityCreationOptions<ActivityContext> options) => Decide(options.Parent),
    };

    private bool _added;

    /// <summary>Propagation data (an activity, nothing recorded) under a remote parent; no activity otherwise.</summary>
    public static ActivitySamplingResult Decide(in ActivityContext parent) =>
        parent.IsRemote && parent.TraceId != default ? ActivitySamplingResult.PropagationData : ActivitySamplingResult.None;

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        if (!_added)
        {
            ActivitySource.AddActivityListener(_listener);
            _added = true;
        }

        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _listener.Dispose();
}
