using TokenGateway.Auth;
using TokenGateway.Core.Errors;

namespace TokenGateway.Proxy;

/// <summary>Authenticates the caller's virtual key; the key never leaves this stage (it is not forwarded or logged).</summary>
internal sealed class VirtualKeyAuthMiddleware(RequestDelegate next, VirtualKeyAuthenticator authenticator)
{
    public Task InvokeAsync(HttpContext context) => AuthenticateAsync(context).Then(next, context);

    /// <summary>False when the caller was refused (the error is written).</summary>
    private async ValueTask<bool> AuthenticateAsync(HttpContext context)
    {
        var exchange = context.GetLlmExchange();
        CallerIdentity? identity = null;
        if (ApiKeys.TryRead(context.Request, out var key))
        {
            identity = await authenticator.AuthenticateAsync(key, context.RequestAborted);
        }

        if (identity is not { } id)
        {
            await exchange.FailAsync(context, GatewayError.InvalidApiKey,
                key.Length == 0
                    ? "No API key provided. Send your TokenGateway key as 'Authorization: Bearer tg-…' or 'x-api-key: tg-…'."
                    : "Invalid, revoked or expired API key. Create a key with the admin API (POST /admin/teams/{id}/keys).");
            return false;
        }

        exchange.SetCaller(id.TeamId, id.KeyId);
        return true;
    }
}
