using TokenGateway.Core.Tokenization;

namespace TokenGateway.Proxy;

/// <summary>
/// Counts the request's prompt tokens once, before any stage needs them (admission, optimization, headers, and the
/// estimate when a stream ends without usage). Later stages update <see cref="LlmExchange.InputTokensSent"/> only.
/// </summary>
internal sealed class MeteringMiddleware(RequestDelegate next, IRequestTokenCounter counter)
{
    public Task InvokeAsync(HttpContext context)
    {
        var exchange = context.GetLlmExchange();
        var count = counter.CountInputTokens(exchange.Request!, exchange.Model!, out var anatomy); // both set by LlmParseMiddleware
        exchange.SetInputTokens(count, anatomy);
        return next(context);
    }
}
