using System.Diagnostics;

namespace TokenGateway.Telemetry;

/// <summary>
/// The gateway's one <see cref="ActivitySource"/> (<c>TokenGateway</c>): a <c>tokengateway.request</c> span per LLM
/// request with a child span per pipeline stage. Starting a span costs nothing when no listener samples it.
/// </summary>
internal static class GatewayActivities
{
    public const string SourceName = "TokenGateway";
    public const string RequestSpan = "tokengateway.request";
    public const string AdmissionSpan = "tokengateway.admission";
    public const string OptimizationSpan = "tokengateway.optimization";
    public const string UpstreamSpan = "tokengateway.upstream";

    public static readonly ActivitySource Source = new(SourceName);

    /// <summary>Starts a span under the current one (the ASP.NET Core server span for a request span).</summary>
    public static Activity? Start(string name) => Source.StartActivity(name, ActivityKind.Internal);
}
