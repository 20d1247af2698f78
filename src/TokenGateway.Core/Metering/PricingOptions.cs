using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Options;

namespace TokenGateway.Core.Metering;

/// <summary>What to do with a model whose card has no input or output price.</summary>
public enum UnpricedModelPolicy
{
    /// <summary>Refuse requests for the model (<c>model_not_priced</c>); the default.</summary>
    Refuse,
    /// <summary>Serve them and charge the configured ceiling prices for the missing prices.</summary>
    Ceiling,
}

/// <summary>
/// Configuration section <c>Pricing</c>: how unpriced models are treated, for admission's reservation and for the
/// settled cost alike (one setting, one price). A model is never silently free.
/// </summary>
/// <remarks>
/// <c>Budgets:UnpricedInputPricePerMillion</c> / <c>Budgets:UnpricedOutputPricePerMillion</c> are deprecated aliases of
/// <see cref="CeilingInputPerMillion"/> / <see cref="CeilingOutputPerMillion"/>, read only when the <c>Pricing</c> key
/// is absent.
/// </remarks>
public sealed class PricingOptions
{
    /// <summary>Configuration section name.</summary>
    public const string SectionName = "Pricing";

    /// <summary>Refuse (default) or charge the ceiling.</summary>
    public UnpricedModelPolicy UnpricedModelPolicy { get; set; } = UnpricedModelPolicy.Refuse;

    /// <summary>Input price per million tokens charged under <see cref="UnpricedModelPolicy.Ceiling"/>.</summary>
    [Range(typeof(decimal), "0.000001", "1000000")]
    public decimal CeilingInputPerMillion { get; set; } = 15m;

    /// <summary>Output price per million tokens charged under <see cref="UnpricedModelPolicy.Ceiling"/>.</summary>
    [Range(typeof(decimal), "0.000001", "1000000")]
    public decimal CeilingOutputPerMillion { get; set; } = 75m;
}

/// <summary>Source-generated checks of <see cref="PricingOptions"/>' data annotations.</summary>
[OptionsValidator]
internal sealed partial class PricingOptionsValidator : IValidateOptions<PricingOptions>;
