using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace TokenGateway.Hosting;

/// <summary>Top-level gateway settings (section <c>Gateway</c>).</summary>
public sealed class GatewayOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Gateway";

    /// <summary>Largest request body accepted on LLM routes; larger bodies get 413 <c>request_too_large</c>.</summary>
    [Range(1024, 1L << 31)]
    public long MaxRequestBodyBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>Largest non-streamed upstream response the gateway buffers (for metering and validation).</summary>
    [Range(1024, 1L << 31)]
    public long MaxResponseBodyBytes { get; set; } = 64 * 1024 * 1024;

    /// <summary>Time allowed for the upstream to send response headers; then 504 <c>upstream_timeout</c>.</summary>
    public TimeSpan UpstreamTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Longest silence allowed between chunks of an upstream response body.</summary>
    public TimeSpan UpstreamIdleTimeout { get; set; } = TimeSpan.FromSeconds(120);

    /// <summary>
    /// Total time one LLM request may take, streams included (time to headers, the body, repair calls). Must be shorter
    /// than <c>Budgets:ReservationTtl</c>, so a request's budget reservation never expires while it still runs; a
    /// stream cut at the deadline ends abnormally and is billed for what was delivered.
    /// </summary>
    public TimeSpan RequestDeadline { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>Time left of <see cref="RequestDeadline"/> for a request that has run <paramref name="elapsedMs"/> (never negative).</summary>
    public TimeSpan RemainingFor(double elapsedMs)
    {
        var left = RequestDeadline - TimeSpan.FromMilliseconds(elapsedMs);
        return left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    /// <summary>Time in-flight requests (streams included) get to finish on shutdown.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary><c>Auto</c> (simulator when no provider key is set), <c>Always</c> or <c>Never</c>.</summary>
    public SimulatorMode Simulator { get; set; } = SimulatorMode.Auto;

    /// <summary>Write logs as compact JSON instead of text.</summary>
    public bool JsonLogs { get; set; }

    /// <summary>
    /// Level of the request-completion log event for a request that succeeded (status below 400 and, for LLM routes,
    /// usage status <c>ok</c>). Default <c>Debug</c>: the ledger holds every LLM request, and the console line costs
    /// about a fifth of the gateway's throughput (issue #17). Set <c>Information</c> to log every request. Refused and
    /// failed requests keep their levels: 4xx and non-ok usage at Information, 5xx and exceptions at Error.
    /// </summary>
    public Serilog.Events.LogEventLevel RequestLogLevel { get; set; } = Serilog.Events.LogEventLevel.Debug;
}

/// <summary>When the built-in simulator serves requests.</summary>
public enum SimulatorMode
{
    /// <summary>Only when no configured provider has a key in the environment.</summary>
    Auto,
    /// <summary>Always route every model to the built-in simulator.</summary>
    Always,
    /// <summary>Never; providers without keys fail with 502.</summary>
    Never,
}

/// <summary>Source-generated checks of <see cref="GatewayOptions"/>' data annotations.</summary>
[OptionsValidator]
internal sealed partial class GatewayOptionsValidator : IValidateOptions<GatewayOptions>;
