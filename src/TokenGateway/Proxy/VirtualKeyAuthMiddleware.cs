using TokenGateway.Auth;
using TokenGateway.Core.Errors;

namespace TokenGateway.Proxy;

/// <summary>Authenticates the caller's virtual key; the key never leaves this stage (it is not forwarded or logged).</summary>
internal sealed class VirtualKeyAuthMiddleware(RequestDelegate next, VirtualKeyAuthenticator authenticator)
{
    public Task InvokeAsync(HttpContext context)
    {
        // The key is hashed straight from the header's value (no copy); the lookup usually completes from the cache.
        var presented = ApiKeys.TryReadSpan(context.Request, out var key);
        var lookup = presented ? authenticator.AuthenticateAsync(key, context.RequestAborted) : ValueTask.FromResult<CallerIdentity?>(null);
        return AuthenticateAsync(context, lookup, presented).Then(next, context);
    }

    /// <summary>False when the caller was refused (the error is written).</summary>
    private static async ValueTask<bool> AuthenticateAsync(HttpContext context, ValueTask<CallerIdentity?> lookup, bool presented)
    {
        var exchange = context.GetLlmExchange();
        if (await lookup is not { } id)
        {
            await exchange.FailAsync(context, GatewayError.InvalidApiKey,
                !presented
                    ? "No API key provided. Send your TokenGateway key as 'Authorization: Bearer tg-…' or 'x-api-key: tg-…'."
                    : "Invalid, revoked or expired API key. Create a key with the admin API (POST /admin/teams/{id}/keys).");
            return false;
        }

        exchange.SetCaller(id.TeamId, id.KeyId);
        return true;
    }
}
