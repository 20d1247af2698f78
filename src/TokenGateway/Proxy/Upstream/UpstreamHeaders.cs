using System.Net.Http.Headers;
using Microsoft.Extensions.Primitives;
using TokenGateway.Core.Dialects;
using TokenGateway.Providers;

namespace TokenGateway.Proxy.Upstream;

/// <summary>
/// The header rules of one provider, applied identically by the proxy path (<see cref="ProviderRequestTransform"/>,
/// <see cref="LlmResponseHandler"/>) and the gateway's own calls (<see cref="UpstreamInvoker"/>): which client headers
/// may reach the provider, which provider headers may reach the client, and the credential swap.
/// </summary>
/// <remarks>
/// Allowlists, not denylists: a header nobody thought of (<c>OpenAI-Organization</c> billing another organisation on
/// the shared key, <c>X-Forwarded-*</c>, a client's <c>x-tokengateway-request-id</c>, <c>set-cookie</c>, the provider's
/// rate-limit state) never crosses the gateway unless configuration names it (issue #12 item 9). Both lists are built
/// once per provider at start-up; applying them walks the short list, not every header of the message.
/// </remarks>
internal sealed class UpstreamHeaders
{
    /// <summary>The gateway's request id, sent upstream (the client's value is never forwarded) and returned to the client.</summary>
    public const string RequestIdHeader = "x-tokengateway-request-id";

    // Framing of the body the gateway sends: always forwarded (YARP puts them on the content).
    private static readonly string[] _framing = ["Content-Type", "Content-Length"];

    private static readonly string[] _commonRequest = ["Accept"];
    private static readonly string[] _anthropicRequest = ["anthropic-version"];
    private static readonly string[] _simulatorRequest = ["x-simulator-fault"];

    // What every SDK needs back: retry advice and the provider's request id for support tickets. Content-Type is
    // copied by the response handler itself.
    private static readonly string[] _commonResponse = ["Retry-After", "retry-after-ms", "x-should-retry", "x-request-id", "request-id"];

    private UpstreamHeaders(string[] request, string[] response)
    {
        RequestHeaders = request;
        ResponseHeaders = response;
    }

    /// <summary>Client request headers forwarded upstream (framing, the type's defaults, configured extras).</summary>
    public IReadOnlyList<string> RequestHeaders { get; }

    /// <summary>Provider response headers returned to the client (besides Content-Type).</summary>
    public IReadOnlyList<string> ResponseHeaders { get; }

    /// <summary>Builds the rules for one provider. <paramref name="simulator"/>: the built-in simulator serves it.</summary>
    public static UpstreamHeaders For(ProviderOptions options, bool simulator)
    {
        ArgumentNullException.ThrowIfNull(options);
        var request = new List<string>(_framing);
        request.AddRange(_commonRequest);
        if (options.Type != ProviderType.AzureOpenAI)
        {
            // Anthropic, and the types that may also serve /v1/messages (simulator, compatible servers).
            request.AddRange(_anthropicRequest);
        }

        if (simulator || options.Type == ProviderType.Simulator)
        {
            request.AddRange(_simulatorRequest);
        }

        Add(request, options.ForwardRequestHeaders);
        var response = new List<string>(_commonResponse);
        Add(response, options.ReturnResponseHeaders);
        return new UpstreamHeaders([.. request], [.. response]);
    }

    /// <summary>
    /// Copies the allowed client headers through <paramref name="add"/> (the proxy path adds them with YARP's
    /// <c>RequestTransform.AddHeader</c>, which puts content headers on the content).
    /// </summary>
    public void CopyRequestHeaders<TState>(IHeaderDictionary from, TState state, Action<TState, string, StringValues> add)
    {
        foreach (var name in RequestHeaders)
        {
            if (from.TryGetValue(name, out var values) && !StringValues.IsNullOrEmpty(values))
            {
                add(state, name, values);
            }
        }
    }

    /// <summary>Copies the allowed provider headers (and the content type) onto the client response.</summary>
    public void CopyResponseHeaders(HttpResponseMessage from, HttpResponse to)
    {
        foreach (var name in ResponseHeaders)
        {
            if (from.Headers.NonValidated.TryGetValues(name, out var values))
            {
                to.Headers[name] = ToStringValues(values);
            }
        }

        if (from.Content.Headers.NonValidated.TryGetValues("Content-Type", out var contentType))
        {
            to.Headers.ContentType = ToStringValues(contentType);
        }
    }

    /// <summary>
    /// The gateway's own request headers on an upstream call: identity encoding (the response stays meterable without
    /// decompressing, reliability matrix D10), the gateway's request id, the provider credential in its header style and
    /// the headers the provider requires. For Azure returns the deployment path and api-version the call must go to.
    /// </summary>
    public static (string Path, string ApiVersion)? ApplyGatewayHeaders(HttpHeaders headers, ResolvedProvider provider, LlmExchange exchange, string requestId)
    {
        headers.TryAddWithoutValidation("Accept-Encoding", "identity");
        headers.TryAddWithoutValidation(RequestIdHeader, requestId);
        // The key the attempt planner chose for this attempt (several keys per provider), else the default.
        var key = exchange.Attempts is { Count: > 0 } attempts && attempts.Current.KeyIndex is var k && k > 0 && k < provider.Keys.Count
            ? provider.Keys[k]
            : provider.Keys.Count == 0 ? null : provider.Keys[0];
        switch (provider.Type)
        {
            case ProviderType.Anthropic:
                if (key is not null)
                {
                    headers.TryAddWithoutValidation("x-api-key", key.Secret);
                }

                if (!headers.Contains("anthropic-version"))
                {
                    headers.TryAddWithoutValidation("anthropic-version", provider.Options.AnthropicVersion);
                }

                return null;
            case ProviderType.AzureOpenAI:
                if (key is not null)
                {
                    headers.TryAddWithoutValidation("api-key", key.Secret);
                }

                var surface = exchange.Dialect == LlmDialect.OpenAIEmbeddings ? "embeddings" : "chat/completions";
                // The deployment of the model this call is for: a fallback's after a fallback (issue #13), not the requested one.
                return ($"/openai/deployments/{Uri.EscapeDataString((exchange.ServedModel ?? exchange.Model)!.Name)}/{surface}", provider.Options.ApiVersion);
            default:
                if (key is not null)
                {
                    headers.TryAddWithoutValidation("Authorization", key.BearerAuthorization);
                }

                if (exchange.UpstreamDialect.IsAnthropic() && !headers.Contains("anthropic-version"))
                {
                    headers.TryAddWithoutValidation("anthropic-version", provider.Options.AnthropicVersion);
                }

                return null;
        }
    }

    private static StringValues ToStringValues(HeaderStringValues values)
    {
        if (values.Count == 1)
        {
            return values.ToString();
        }

        var array = new string[values.Count];
        var i = 0;
        foreach (var value in values)
        {
            array[i++] = value;
        }

        return array;
    }

    private static void Add(List<string> list, List<string> extra)
    {
        foreach (var name in extra)
        {
            var trimmed = name?.Trim();
            if (!string.IsNullOrEmpty(trimmed) && !list.Contains(trimmed, StringComparer.OrdinalIgnoreCase))
            {
                list.Add(trimmed);
            }
        }
    }
}
