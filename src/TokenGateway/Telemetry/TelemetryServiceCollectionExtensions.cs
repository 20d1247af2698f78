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
    /// <c>Telemetry:RecordTraces</c> is true); otherwise activities exist only for requests that carry a W3C
    /// <c>traceparent</c>, whose context then reaches the provider (ADR 0004).
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
            .WithTracing(t =>
            {
                if (recordTraces)
                {
                    t.SetSampler(new ParentBasedSampler(new AlwaysOnSampler()))
                        .AddSource(GatewayActivities.SourceName, "Yarp.ReverseProxy")
                        .AddAspNetCoreInstrumentation(o => o.Filter = static context => IsTraced(context.Request.Path))
                        .AddHttpClientInstrumentation();
                }
                else
                {
                    // No span is recorded (ADR 0004): the provider listens to no source, so it creates no activity (an
                    // AlwaysOff sampler would still create every root as propagation data); OTLP export, if configured,
                    // gets no spans. IncomingTraceContext forwards a caller's traceparent.
                    t.SetSampler(new AlwaysOffSampler());
                }
            });
        if (!recordTraces)
        {
            services.AddHostedService<IncomingTraceContext>();
        }

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
