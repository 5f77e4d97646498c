"""Costs under filters: only the campaigns a filter selects, and only the filtered share."""

from __future__ import annotations

from decimal import Decimal

from storeloop.attribution.service import CostFilters, group_costs
from storeloop.runtime import Runtime
from tests.factories.attribution import add_campaign, add_influencer
from tests.factories.workspaces import WorkspaceKeys


def test_costs_follow_the_filters(runtime: Runtime, workspace: WorkspaceKeys) -> None:
    with runtime.session_factory() as session:
        ada = add_influencer(session, workspace.id, "Ada")
        ben = add_influencer(session, workspace.id, "Ben")
        solo = add_campaign(session, workspace.id, "Solo", fee="100", influencers=[ada])
        duo = add_campaign(session, workspace.id, "Duo", fee="900", influencers=[ada, ben])

        def costs(group_by: str, **filters: object) -> dict[object, Decimal]:
            found, _ = group_costs(
                session,
                workspace.id,
                group_by,
                None,
                None,
                CostFilters(**filters),  # type: ignore[arg-type]
            )
            return {key: value for (key, _currency), value in found.items()}

        assert costs("influencer") == {ada.id: Decimal(550), ben.id: Decimal(450)}
        assert costs("influencer", campaign_id=solo.id) == {ada.id: Decimal(100)}
        assert costs("campaign", influencer_id=ada.id) == {
            solo.id: Decimal(100),
            duo.id: Decimal(450),
        }
        assert costs("campaign", influencer_id=ben.id) == {duo.id: Decimal(450)}
        assert costs("channel", influencer_id=ben.id) == {"Influencer": Decimal(450)}
        assert costs("influencer", channel="Paid Social") == {}
        session.rollback()
