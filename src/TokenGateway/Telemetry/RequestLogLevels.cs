using Serilog.Events;
using TokenGateway.Core.Metering;
using TokenGateway.Proxy;

namespace TokenGateway.Telemetry;

/// <summary>
/// The level of Serilog's request-completion event (one per request): exceptions and 5xx at Error, 4xx and LLM
/// requests whose usage status is not <c>ok</c> (aborted, cut streams) at Information, every other request at
/// <c>Gateway:RequestLogLevel</c> (default Debug). <see cref="ExchangeCompletion"/> asks the same question before it
/// builds the event's properties, so none are built for an event nobody writes.
/// </summary>
internal sealed class RequestLogLevels(LogEventLevel success)
{
    public LogEventLevel Success => success;

    /// <summary>The level for a finished request (the request-logging middleware's <c>GetLevel</c>).</summary>
    public LogEventLevel For(HttpContext context, Exception? exception) =>
        exception is not null ? LogEventLevel.Error : For(context.Response.StatusCode, context.Features.Get<LlmExchange>()?.CompletedStatus);

    /// <summary>The level for a response status and, for LLM requests, the usage status.</summary>
    public LogEventLevel For(int statusCode, string? usageStatus) => statusCode switch
    {
        > 499 => LogEventLevel.Error,
        > 399 => LogEventLevel.Information,
        _ when usageStatus is not null && usageStatus != UsageStatus.Ok => LogEventLevel.Information,
        _ => success,
    };
}
