"""Links: everything that opens a socket or an HTTP client lives in this package.

The `Link` protocol and the adapter registry come with their own issue; for now this
package holds the CelesTrak GP client (`groundctl.links.celestrak`).
"""
