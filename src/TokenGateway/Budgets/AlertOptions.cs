using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace TokenGateway.Budgets;

/// <summary>Where soft-budget alerts are delivered (section <c>Alerts</c>).</summary>
public sealed class AlertOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Alerts";

    /// <summary>URL that receives a JSON POST per alert; alerts are only logged when unset.</summary>
    public Uri? WebhookUrl { get; set; }

    /// <summary>Timeout of one delivery attempt.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:10:00")]
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Delivery attempts per alert (first try included).</summary>
    [Range(1, 20)]
    public int MaxAttempts { get; set; } = 3;

    /// <summary>Alerts waiting for delivery before new ones are dropped (and logged as dropped).</summary>
    [Range(1, 1_000_000)]
    public int QueueCapacity { get; set; } = 1000;
}

/// <summary>Source-generated checks of <see cref="AlertOptions"/>' data annotations.</summary>
[OptionsValidator]
internal sealed partial class AlertOptionsDataValidator : IValidateOptions<AlertOptions>;

/// <summary>The webhook must be an absolute http(s) URL: alerts go nowhere else.</summary>
internal sealed class AlertOptionsValidator : IValidateOptions<AlertOptions>
{
    public ValidateOptionsResult Validate(string? name, AlertOptions options) =>
        options.WebhookUrl is { } url && (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
            ? ValidateOptionsResult.Fail($"{AlertOptions.SectionName}:WebhookUrl must be an absolute http or https URL.")
            : ValidateOptionsResult.Success;
}
