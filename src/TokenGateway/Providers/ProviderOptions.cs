using Microsoft.Extensions.Options;

namespace TokenGateway.Providers;

/// <summary>The wire protocol and credential style of a provider.</summary>
public enum ProviderType
{
    /// <summary>api.openai.com: <c>Authorization: Bearer</c>.</summary>
    OpenAI,
    /// <summary>api.anthropic.com: <c>x-api-key</c> + <c>anthropic-version</c>.</summary>
    Anthropic,
    /// <summary>Azure OpenAI: <c>api-key</c>, deployment paths and <c>api-version</c>.</summary>
    AzureOpenAI,
    /// <summary>Any OpenAI-compatible server (vLLM, Ollama, LM Studio): optional Bearer key.</summary>
    OpenAICompatible,
    /// <summary>The built-in simulator (OpenAI and Anthropic surfaces; Bearer key).</summary>
    Simulator,
}

/// <summary>How the gateway authenticates to a provider.</summary>
public enum ProviderAuth
{
    /// <summary>Provider keys from the environment variables named by <c>ApiKeyEnv</c>.</summary>
    ApiKey,
    /// <summary>A Microsoft Entra ID access token (Azure OpenAI), sent as <c>Authorization: Bearer</c>; no key.</summary>
    EntraId,
}

/// <summary>The Azure.Identity credential used with <c>Auth: EntraId</c>.</summary>
public enum EntraIdCredentialKind
{
    /// <summary><c>DefaultAzureCredential</c>: environment, workload identity, managed identity, developer tools, in that order.</summary>
    Default,
    /// <summary><c>ManagedIdentityCredential</c> (system-assigned, or user-assigned with <c>ManagedIdentityClientId</c>).</summary>
    ManagedIdentity,
    /// <summary><c>WorkloadIdentityCredential</c> (Kubernetes workload identity federation).</summary>
    WorkloadIdentity,
}

/// <summary>One upstream provider; becomes a YARP cluster with the same id.</summary>
public sealed class ProviderOptions
{
    /// <summary>Wire protocol.</summary>
    public ProviderType Type { get; set; } = ProviderType.OpenAI;

    /// <summary>Base addresses (YARP destinations), e.g. <c>https://api.openai.com/</c>.</summary>
    public List<string> Destinations { get; set; } = [];

    /// <summary>
    /// Name of the environment variable that holds the provider key (never the key itself); several keys: a
    /// comma-separated list (<c>"OPENAI_KEY_A,OPENAI_KEY_B"</c>) or an array in configuration. The first is the default.
    /// </summary>
    public string? ApiKeyEnv { get; set; }

    /// <summary>The variable names of <see cref="ApiKeyEnv"/>, in order, trimmed, empty entries dropped.</summary>
    public IReadOnlyList<string> ApiKeyEnvNames => SplitNames(ApiKeyEnv);

    internal static string[] SplitNames(string? value) => string.IsNullOrWhiteSpace(value)
        ? []
        : value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Distinct(StringComparer.Ordinal).ToArray();

    /// <summary>
    /// Replaces the leading <c>/v1</c> of every upstream path, for OpenAI-compatible APIs rooted elsewhere: Gemini's is
    /// <c>/v1beta/openai</c> (<c>/v1/chat/completions</c> → <c>/v1beta/openai/chat/completions</c>). Unset: paths are kept.
    /// </summary>
    public string? PathPrefix { get; set; }

    /// <summary>The upstream path for a gateway route path (applies <see cref="PathPrefix"/>).</summary>
    public PathString MapPath(PathString path) =>
        !string.IsNullOrEmpty(PathPrefix) && path.StartsWithSegments("/v1", out var rest) ? new PathString(PathPrefix.TrimEnd('/')).Add(rest) : path;

    /// <summary>Azure <c>api-version</c> query value.</summary>
    public string ApiVersion { get; set; } = "2024-10-21";

    /// <summary>Anthropic <c>anthropic-version</c> header sent when the client sent none.</summary>
    public string AnthropicVersion { get; set; } = "2023-06-01";

    /// <summary>
    /// How the gateway authenticates to the provider: <see cref="ProviderAuth.ApiKey"/> (the keys of
    /// <see cref="ApiKeyEnv"/>) or, for Azure OpenAI, <see cref="ProviderAuth.EntraId"/> (a Microsoft Entra ID token, no key).
    /// </summary>
    public ProviderAuth Auth { get; set; } = ProviderAuth.ApiKey;

    /// <summary>With <c>Auth: EntraId</c>: which credential obtains the token.</summary>
    public EntraIdCredentialKind EntraIdCredential { get; set; } = EntraIdCredentialKind.Default;

    /// <summary>With <c>Auth: EntraId</c>: the client id of a user-assigned managed identity (system-assigned when unset).</summary>
    public string? ManagedIdentityClientId { get; set; }

    /// <summary>With <c>Auth: EntraId</c>: the token scope (Azure OpenAI's by default).</summary>
    public string EntraIdScope { get; set; } = "https://cognitiveservices.azure.com/.default";

    /// <summary>YARP load-balancing policy across destinations.</summary>
    public string LoadBalancingPolicy { get; set; } = "PowerOfTwoChoices";

    /// <summary>
    /// Client request headers forwarded to this provider in addition to the built-in allowlist for its type
    /// (docs/configuration.md lists it). Every other client header is dropped.
    /// </summary>
    public List<string> ForwardRequestHeaders { get; set; } = [];

    /// <summary>
    /// Provider response headers returned to the client in addition to the built-in allowlist (e.g. the provider's
    /// <c>x-ratelimit-*</c> headers). Every other provider header is dropped.
    /// </summary>
    public List<string> ReturnResponseHeaders { get; set; } = [];
}

/// <summary>Section <c>Providers</c>: provider id → settings.</summary>
public sealed class ProvidersOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Providers";

    /// <summary>Providers keyed by id (the id models refer to and the YARP cluster id).</summary>
    public Dictionary<string, ProviderOptions> Providers { get; } = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Binds the <c>Providers</c> section into <see cref="Providers"/>; an array-valued <c>ApiKeyEnv</c>
    /// (<c>Providers:openai:ApiKeyEnv:0</c>, <c>…:1</c>) becomes the equivalent comma-separated list.
    /// </summary>
    public void Bind(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(SectionName);
        // The binder drops a whole provider whose string ApiKeyEnv has array children, so bind without those items
        // and fold them into the comma-separated form afterwards.
        var scalars = section.AsEnumerable(makePathsRelative: true)
            .Where(kv => kv.Value is not null && !IsApiKeyEnvItem(kv.Key))
            .ToList();
        new ConfigurationBuilder().AddInMemoryCollection(scalars).Build().Bind(Providers);
        foreach (var provider in section.GetChildren())
        {
            var keyEnv = provider.GetSection(nameof(ProviderOptions.ApiKeyEnv));
            var items = keyEnv.GetChildren().Select(c => c.Value).Where(v => !string.IsNullOrWhiteSpace(v)).ToArray();
            if (items.Length > 0)
            {
                if (!Providers.TryGetValue(provider.Key, out var options))
                {
                    Providers[provider.Key] = options = new ProviderOptions();
                }

                options.ApiKeyEnv = string.Join(',', items);
            }
        }
    }

    private static bool IsApiKeyEnvItem(string relativeKey)
    {
        // "{provider}:ApiKeyEnv:{n}"
        var parts = relativeKey.Split(':');
        return parts.Length == 3 && string.Equals(parts[1], nameof(ProviderOptions.ApiKeyEnv), StringComparison.OrdinalIgnoreCase);
    }
}

/// <summary>
/// Start-up checks of <see cref="ProvidersOptions"/>: every provider has at least one absolute http(s) destination and,
/// when it names one, a non-blank key variable.
/// </summary>
internal sealed class ProvidersOptionsValidator : IValidateOptions<ProvidersOptions>
{
    public ValidateOptionsResult Validate(string? name, ProvidersOptions options)
    {
        var failures = new List<string>();
        foreach (var (id, provider) in options.Providers)
        {
            var key = $"{ProvidersOptions.SectionName}:{id}";
            if (provider.Destinations.Count == 0)
            {
                failures.Add($"{key}:Destinations must list at least one base URL.");
            }

            foreach (var destination in provider.Destinations)
            {
                if (!Uri.TryCreate(destination, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                {
                    failures.Add($"{key}:Destinations entry '{destination}' is not an absolute http or https URL.");
                }
            }

            if (provider.ApiKeyEnv is { } env && string.IsNullOrWhiteSpace(env))
            {
                failures.Add($"{key}:ApiKeyEnv must name an environment variable (or be omitted).");
            }

            if (!string.IsNullOrEmpty(provider.PathPrefix) && (!provider.PathPrefix.StartsWith('/') || provider.PathPrefix.Contains("..", StringComparison.Ordinal)))
            {
                failures.Add($"{key}:PathPrefix must be an absolute path such as /v1beta/openai.");
            }

            if (provider.Auth == ProviderAuth.EntraId && provider.Type != ProviderType.AzureOpenAI)
            {
                failures.Add($"{key}:Auth EntraId applies to Type AzureOpenAI only (this provider is {provider.Type}).");
            }

            if (provider.Auth == ProviderAuth.EntraId && !string.IsNullOrWhiteSpace(provider.ApiKeyEnv))
            {
                failures.Add($"{key}: Auth EntraId sends no key; remove ApiKeyEnv (one credential per provider).");
            }

            if (string.IsNullOrWhiteSpace(provider.LoadBalancingPolicy))
            {
                failures.Add($"{key}:LoadBalancingPolicy must name a YARP load-balancing policy.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
