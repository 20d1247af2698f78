using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using TokenGateway.Telemetry;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the gateway's metrics and traces (OpenTelemetry), the Prometheus endpoint and OTLP export.</summary>
public static class TelemetryServiceCollectionExtensions
{
    /// <summary>
    /// Adds <c>GatewayMetrics</c>, the OpenTelemetry SDK with the <c>TokenGateway</c> meter and activity source plus
    /// ASP.NET Core and HttpClient instrumentation, the Prometheus exporter, and OTLP export of metrics and traces when
    /// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set. Spans are recorded when they are exported (or
    /// <c>Telemetry:RecordTraces</c> is true); otherwise only trace context is propagated.
    /// </summary>
    public static IServiceCollection AddGatewayTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddSingleton<GatewayMetrics>();
        var exportTraces = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var recordTraces = configuration.GetValue("Telemetry:RecordTraces", exportTraces);
        var otel = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(configuration["OTEL_SERVICE_NAME"] ?? "tokengateway"))
            .WithMetrics(m => m
                .AddMeter(GatewayMetrics.MeterName)
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddPrometheusExporter())
            .WithTracing(t => t
                // Recording spans nobody exports costs CPU on every request; when off, root spans still carry
                // propagation data, so the W3C trace context still reaches the provider.
                .SetSampler(recordTraces ? new ParentBasedSampler(new AlwaysOnSampler()) : new AlwaysOffSampler())
                .AddSource(GatewayActivities.SourceName, "Yarp.ReverseProxy")
                .AddAspNetCoreInstrumentation(o => o.Filter = static context => IsTraced(context.Request.Path))
                .AddHttpClientInstrumentation());

        // Same switch as the Aspire service defaults: export only when a collector is configured.
        if (!string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]))
        {
            otel.UseOtlpExporter();
        }

        return services;
    }

    private static bool IsTraced(PathString path) =>
        !path.StartsWithSegments("/metrics") && !path.StartsWithSegments("/healthz") && !path.StartsWithSegments("/readyz")
        && !path.StartsWithSegments("/dashboard/assets");
}
