using Azure.Core;
using Azure.Identity;

namespace TokenGateway.Providers;

/// <summary>
/// The Microsoft Entra ID access token of one provider (Azure OpenAI with <c>Auth: EntraId</c>): fetched from a
/// <see cref="TokenCredential"/>, cached, and refreshed before it expires, sent as <c>Authorization: Bearer</c>.
/// </summary>
/// <remarks>
/// A request never waits for Entra ID while a valid token is cached: inside the refresh window (the token's
/// <c>RefreshOn</c>, else five minutes before it expires) one background refresh runs and requests keep the current
/// token. Only the first request, or one after the token has expired (e.g. a long Entra ID outage), awaits a fetch, and
/// concurrent requests share that one fetch. A failed background refresh is retried by the next request.
/// </remarks>
internal sealed partial class EntraIdTokenSource
{
    /// <summary>The scope of Azure OpenAI (Azure AI services) data-plane tokens.</summary>
    public const string DefaultScope = "https://cognitiveservices.azure.com/.default";

    private static readonly TimeSpan _refreshMargin = TimeSpan.FromMinutes(5);

    private readonly TokenCredential _credential;
    private readonly TokenRequestContext _context;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly string _providerId;
    private readonly Lock _gate = new();
    private Cached? _cached;
    private Task<Cached>? _inflight;

    public EntraIdTokenSource(string providerId, TokenCredential credential, string scope, TimeProvider time, ILogger logger)
    {
        _providerId = providerId;
        _credential = credential;
        _context = new TokenRequestContext([scope]);
        _time = time;
        _logger = logger;
    }

    /// <summary>Builds the credential a provider's settings name (DefaultAzureCredential unless told otherwise).</summary>
    public static TokenCredential CreateCredential(ProviderOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var clientId = string.IsNullOrWhiteSpace(options.ManagedIdentityClientId) ? null : options.ManagedIdentityClientId;
        return options.EntraIdCredential switch
        {
            EntraIdCredentialKind.ManagedIdentity => new ManagedIdentityCredential(
                clientId is null ? ManagedIdentityId.SystemAssigned : ManagedIdentityId.FromUserAssignedClientId(clientId)),
            EntraIdCredentialKind.WorkloadIdentity => new WorkloadIdentityCredential(), // AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE
            _ => new DefaultAzureCredential(new DefaultAzureCredentialOptions { ManagedIdentityClientId = clientId }),
        };
    }

    /// <summary>The <c>Authorization</c> header value; completes synchronously while a valid token is cached.</summary>
    public ValueTask<string> GetAuthorizationAsync(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        var cached = _cached;
        if (cached is not null && now < cached.ExpiresOn)
        {
            if (now >= cached.RefreshOn)
            {
                // Background refresh; this request keeps the still-valid token. A failure is logged by the fetch and
                // observed here; the next request inside the window tries again.
                _ = StartFetch().ContinueWith(static t => _ = t.Exception, CancellationToken.None,
                    TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }

            return ValueTask.FromResult(cached.Authorization);
        }

        return AwaitFetchAsync(cancellationToken);
    }

    private async ValueTask<string> AwaitFetchAsync(CancellationToken cancellationToken) =>
        (await StartFetch().WaitAsync(cancellationToken)).Authorization;

    private Task<Cached> StartFetch()
    {
        lock (_gate)
        {
            if (_inflight is { IsCompleted: false } running)
            {
                return running; // one fetch at a time, shared by every waiting request
            }

            // A credential that answers synchronously completes the fetch right here: never keep a finished task.
            var fetch = FetchAsync();
            _inflight = fetch.IsCompleted ? null : fetch;
            return fetch;
        }
    }

    private async Task<Cached> FetchAsync()
    {
        try
        {
            // Not the request's token: a client that goes away must not cancel the fetch others share.
            var token = await _credential.GetTokenAsync(_context, CancellationToken.None).ConfigureAwait(false);
            var refreshOn = token.RefreshOn ?? token.ExpiresOn - _refreshMargin;
            var cached = new Cached("Bearer " + token.Token, token.ExpiresOn, refreshOn);
            _cached = cached;
            LogTokenFetched(_logger, _providerId, token.ExpiresOn);
            return cached;
        }
        catch (Exception ex) when (ex is AuthenticationFailedException or CredentialUnavailableException or Azure.RequestFailedException)
        {
            LogTokenFailed(_logger, _providerId, ex.GetType().Name);
            throw new EntraIdUnavailableException(_providerId, ex);
        }
    }

    private sealed record Cached(string Authorization, DateTimeOffset ExpiresOn, DateTimeOffset RefreshOn);

    [LoggerMessage(2110, LogLevel.Information, "Provider {ProviderId}: Microsoft Entra ID token obtained (expires {ExpiresOn:u})")]
    private static partial void LogTokenFetched(ILogger logger, string providerId, DateTimeOffset expiresOn);

    [LoggerMessage(2111, LogLevel.Error, "Provider {ProviderId}: no Microsoft Entra ID token ({Reason}); check the identity's configuration and its role on the Azure OpenAI resource")]
    private static partial void LogTokenFailed(ILogger logger, string providerId, string reason);
}

/// <summary>No Entra ID token could be obtained for a provider: the request fails with 502 <c>upstream_auth_failed</c>.</summary>
internal sealed class EntraIdUnavailableException(string providerId, Exception inner)
    : Exception($"No Microsoft Entra ID token for provider '{providerId}'.", inner)
{
    public string ProviderId { get; } = providerId;
}
