using Microsoft.Extensions.Options;
using TokenGateway.Core.Budgets;

namespace TokenGateway.Hosting;

/// <summary>
/// Cross-section checks for <see cref="GatewayOptions"/>: the request deadline must be positive and shorter than the
/// budget reservation's time to live, or a long request could outlive its reservation and overshoot a hard budget.
/// </summary>
internal sealed class GatewayDeadlineValidator(IOptions<AdmissionOptions> admission) : IValidateOptions<GatewayOptions>
{
    public ValidateOptionsResult Validate(string? name, GatewayOptions options)
    {
        if (options.RequestDeadline <= TimeSpan.Zero)
        {
            return ValidateOptionsResult.Fail($"{GatewayOptions.SectionName}:RequestDeadline must be positive.");
        }

        var ttl = admission.Value.ReservationTtl;
        return options.RequestDeadline < ttl
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(
                $"{GatewayOptions.SectionName}:RequestDeadline ({options.RequestDeadline}) must be shorter than {AdmissionOptions.SectionName}:ReservationTtl ({ttl}): " +
                "a request must never outlive its budget reservation.");
    }
}
