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

/// <summary>One upstream provider; becomes a YARP cluster with the same id.</summary>
public sealed class ProviderOptions
{
    /// <summary>Wire protocol.</summary>
    public ProviderType Type { get; set; } = ProviderType.OpenAI;

    /// <summary>Base addresses (YARP destinations), e.g. <c>https://api.openai.com/</c>.</summary>
    public List<string> Destinations { get; set; } = [];

    /// <summary>Name of the environment variable that holds the provider key (never the key itself).</summary>
    public string? ApiKeyEnv { get; set; }

    /// <summary>Azure <c>api-version</c> query value.</summary>
    public string ApiVersion { get; set; } = "2024-10-21";

    /// <summary>Anthropic <c>anthropic-version</c> header sent when the client sent none.</summary>
    public string AnthropicVersion { get; set; } = "2023-06-01";

    /// <summary>YARP load-balancing policy across destinations.</summary>
    public string LoadBalancingPolicy { get; set; } = "PowerOfTwoChoices";
}

/// <summary>Section <c>Providers</c>: provider id → settings.</summary>
public sealed class ProvidersOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Providers";

    /// <summary>Providers keyed by id (the id models refer to and the YARP cluster id).</summary>
    public Dictionary<string, ProviderOptions> Providers { get; } = new(StringComparer.OrdinalIgnoreCase);
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

            if (string.IsNullOrWhiteSpace(provider.LoadBalancingPolicy))
            {
                failures.Add($"{key}:LoadBalancingPolicy must name a YARP load-balancing policy.");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
